"""Opening an index: the live version, checked against its manifest, as one ``OpenIndex``
(documents, lazy chunk table, vector store, BM25, stored analyses and article texts)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import Sentence, sentence_from_row
from ..documents import DEFAULT_MAX_FILE_BYTES, file_digest, list_articles
from ..errors import IndexCorruptError, IndexMismatchError, rebuild_hint
from ..lexical import LexicalIndex
from ..schema import Chunk, Document
from ..stores import VectorStore, base as stores_base, open_store
from . import versions


@dataclass
class OpenIndex:
    """A loaded index version: manifest, documents, chunk table, vectors and BM25.

    ``chunks`` is a lazy, list-like ``versions.ChunkTable`` (``len``, ``[row]``, iteration): rows are
    parsed on access, so a million-chunk index does not hold its table in memory.
    """

    index_dir: Path
    version: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: Sequence[Chunk]
    store: VectorStore
    lexical: LexicalIndex
    _row_of: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def vectors(self) -> Any:
        """The faiss.Index of a FAISS store (benchmarks, tests); the store itself otherwise."""
        return getattr(self.store, "index", self.store)

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    def row(self, chunk_id: str) -> int:
        if not self._row_of:
            self._row_of.update({c.chunk_id: i for i, c in enumerate(self.chunks)})
        return self._row_of[chunk_id]

    def stale(self) -> list[str]:
        """Why the index no longer matches its docs folder ([] when it is up to date)."""
        return stale_reasons(self.manifest)

    def source(self, doc_id: str) -> str:
        """The text document ``doc_id``'s offsets index, as stored at build time (KeyError if unknown)."""
        if doc_id not in self.documents:
            raise KeyError(doc_id)
        if versions.SOURCES not in self.manifest.get("files", {}):
            raise IndexMismatchError(f"the index at {str(self.index_dir)!r} was built before article texts were "
                                     f"stored in it: {rebuild_hint(self.index_dir)}")
        if "_sources" not in self.__dict__:
            self.__dict__["_sources"] = versions.SourceTable(self._lazy_file(versions.SOURCES),
                                                          self._lazy_file(versions.SOURCE_OFFSETS), list(self.documents))
        return self.__dict__["_sources"].text(doc_id)

    @property
    def has_analysis(self) -> bool:
        # From the manifest, not the disk: a version removed after loading must not silently
        # turn into one without analyses (see _lazy_file).
        return versions.ANALYSIS in self.manifest.get("files", {})

    def _lazy_file(self, name: str) -> Path:
        """A file of this version read after loading; refused if a later build removed it."""
        path = self.version / name
        if not path.is_file():
            raise IndexCorruptError(
                f"{path} is gone: the index at {str(self.index_dir)!r} was rebuilt since it was loaded "
                "(a build keeps the live version and the one before): load it again")
        return path

    def analysis_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Stored sentence analyses per document ({} for an index built without them)."""
        if "_analysis" not in self.__dict__:
            rows = versions.read_jsonl(self._lazy_file(versions.ANALYSIS)) if self.has_analysis else []
            self.__dict__["_analysis"] = {r["doc_id"]: r["sentences"] for r in rows}
        return self.__dict__["_analysis"]

    def sentence_vectors(self) -> np.ndarray:
        if "_svecs" not in self.__dict__:
            self.__dict__["_svecs"] = (
                np.load(self._lazy_file(versions.SENTENCE_VECTORS), mmap_mode="r", allow_pickle=False)
                if versions.SENTENCE_VECTORS in self.manifest.get("files", {})
                else np.zeros((0, self.dimension), dtype=np.float32))
        return self.__dict__["_svecs"]

    def sentences(self, doc_id: str) -> list[Sentence]:
        """The analysed sentences of one document, in order, with their vector rows."""
        cache = self.__dict__.setdefault("_sent_cache", {})
        if doc_id not in cache:
            rows = self.analysis_rows().get(doc_id, [])
            cache[doc_id] = [sentence_from_row(doc_id, r, r["row"]) for r in rows]
        return cache[doc_id]


def open_index(index_dir: str | os.PathLike, *, verify: bool | None = None, retries: int = 3) -> OpenIndex:
    """Load the live version of an index, checking every file against the manifest.

    A build keeps only the live version and the one before it, so a load that started before two
    builds finished can find its version deleted under it: it then loads the new live version
    (up to ``retries`` times). The result is always one whole version, never a mix.
    """
    index_dir = Path(index_dir)
    for attempt in range(retries + 1):
        version = versions.current_version(index_dir)
        try:
            return _open_version(index_dir, version, verify)
        except (IndexCorruptError, FileNotFoundError) as e:
            if attempt < retries and versions.current_version(index_dir) != version:
                continue  # replaced (and collected) while we read it: read the new one
            if isinstance(e, FileNotFoundError):
                raise IndexCorruptError(f"{version} lost a file while loading ({e.filename or e}): "
                                              f"{rebuild_hint(index_dir)}") from None
            raise
    raise AssertionError("unreachable")


def _open_version(index_dir: Path, version: Path, verify: bool | None) -> OpenIndex:
    manifest = versions.read_manifest(version)
    versions.verify_files(version, manifest, hashes=verify)
    chunks = versions.open_chunks(version, manifest)
    vstore = open_store(version, manifest, chunks, index_dir)  # checks its size and dimension
    bm25_bytes = sum(p.stat().st_size for p in (version / versions.BM25_DIR).glob("*") if p.is_file())
    lexical = LexicalIndex.load(version / versions.BM25_DIR, mmap=bm25_bytes >= stores_base.MMAP_MIN_BYTES)
    if lexical.size != len(chunks):
        raise IndexCorruptError(f"{version}/bm25 indexes {lexical.size} chunks, the table has "
                                      f"{len(chunks)}: {rebuild_hint(index_dir)}")
    return OpenIndex(index_dir, version, manifest, versions.read_documents(version), chunks, vstore, lexical)


def stale_reasons(manifest: dict[str, Any]) -> list[str]:
    docs_dir = manifest.get("docs_dir")
    if not docs_dir:
        return []
    docs = Path(docs_dir)
    if not docs.is_dir():
        return [f"docs folder {docs_dir} is gone"]
    indexed = manifest.get("documents", {})
    seen = {p.relative_to(docs).as_posix(): p for p in list_articles(docs)[1]}
    reasons = []
    known = {meta["path"]: meta for meta in indexed.values()}
    skipped = set(manifest.get("skipped_paths", []))
    for rel, p in seen.items():
        meta = known.get(rel)
        if meta is None:
            if rel not in skipped:
                reasons.append(f"new article {rel}")
            continue
        st = p.stat()
        if st.st_size == meta["bytes"] and st.st_mtime_ns == meta["mtime_ns"]:
            continue
        try:
            digest = file_digest(p, max(DEFAULT_MAX_FILE_BYTES, st.st_size))
        except (ValueError, OSError):
            reasons.append(f"changed article {rel}")
            continue
        if digest != meta["content_hash"]:
            reasons.append(f"changed article {rel}")
    reasons += [f"deleted article {rel}" for rel in known if rel not in seen]
    return reasons
