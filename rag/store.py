"""An index on disk: a folder of plain files, versioned, swapped in atomically.

    index/
      CURRENT              name of the live version (replaced atomically with os.replace)
      .lock                held by a build (fcntl), so concurrent builds run one after another
      v-<time>-<id>/       one complete version:
        manifest.json      format version, model, dimension, settings, documents with hashes,
                           and every file's size and sha256
        vectors.faiss      FAISS inner-product index over unit vectors (row i = chunk i)
        chunks.jsonl       the chunk table, one JSON object per line
        documents.jsonl    titles, body segments and content hashes
        bm25/              the lexical index (bm25s: JSON + .npy)
        analysis.jsonl     per document: sentences, tokens, entities, parses (the feature reader)
        sentence_vectors.npy  one embedding per analysed sentence

A build writes a new version folder completely, then points CURRENT at it. A reader resolves
CURRENT once and reads only that folder, so it sees the old or the new index, never a mix; a
build killed at any point leaves CURRENT and the version it names untouched. Nothing is pickled.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError
from .schema import Chunk, Document

FORMAT_VERSION = 1
CURRENT = "CURRENT"
LOCK = ".lock"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
CHUNKS = "chunks.jsonl"
DOCUMENTS = "documents.jsonl"
BM25_DIR = "bm25"
ANALYSIS = "analysis.jsonl"
SENTENCE_VECTORS = "sentence_vectors.npy"
VERIFY_HASH_MAX_BYTES = 512 * 1024 * 1024  # sha256-check files up to this total size on load


def rebuild_hint(index_dir: str | os.PathLike, docs: str | None = None) -> str:
    return f"rebuild it with `rag index {docs or 'DOCS'} --index {index_dir}`"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def build_lock(index_dir: Path, *, timeout: float = 3600.0,
               on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the index's build lock; a second build waits for the first (up to ``timeout`` s)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK, "a+") as f:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and on_wait:
                    on_wait()
                waited = True
                if time.monotonic() > deadline:
                    raise IndexLockedError(f"another build of {str(index_dir)!r} has held its lock for over "
                                           f"{timeout:.0f} s; wait for it to finish or stop it") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def current_version(index_dir: str | os.PathLike) -> Path:
    """The folder of the live version; raises IndexNotFoundError with the command to build one."""
    index_dir = Path(index_dir)
    pointer = index_dir / CURRENT
    if not pointer.is_file():
        if (index_dir / MANIFEST).is_file():
            return index_dir  # a flat folder (e.g. copied by hand): still loadable
        raise IndexNotFoundError(f"no index at {str(index_dir)!r}: build one with `rag index DOCS --index {index_dir}`")
    name = pointer.read_text(encoding="utf-8").strip()
    version = index_dir / name
    if not name or "/" in name or not version.is_dir():
        raise IndexCorruptError(f"{pointer} names a missing version {name!r}: {rebuild_hint(index_dir)}")
    return version


def write_version(index_dir: Path, manifest: dict[str, Any],
                  writers: dict[str, Callable[[Path], None]]) -> Path:
    """Write a complete new version and make it current. Call with the build lock held.

    ``writers`` maps a file or folder name to a function that writes it at the given path. The
    manifest is completed with each file's size and sha256 and written last.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    tmp = index_dir / f".tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        for name, write in writers.items():
            write(tmp / name)
        files = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                with open(p, "rb+") as f:
                    os.fsync(f.fileno())
                files[p.relative_to(tmp).as_posix()] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        manifest = {**manifest, "format_version": FORMAT_VERSION, "files": files}
        _write_text(tmp / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        _fsync_dir(tmp)
        name = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        final = index_dir / name
        os.rename(tmp, final)
        previous = (index_dir / CURRENT).read_text(encoding="utf-8").strip() if (index_dir / CURRENT).is_file() else None
        pointer_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
        _write_text(pointer_tmp, name + "\n")
        os.replace(pointer_tmp, index_dir / CURRENT)
        _fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    collect_garbage(index_dir, keep={name, previous})
    return final


def collect_garbage(index_dir: Path, keep: set[str | None]) -> None:
    """Remove versions other than ``keep`` and leftovers of killed builds (build lock held)."""
    for p in index_dir.iterdir():
        if p.name in keep:
            continue
        if p.is_dir() and (p.name.startswith("v-") or p.name.startswith(".tmp-")):
            shutil.rmtree(p, ignore_errors=True)
        elif p.is_file() and p.name.startswith(f".{CURRENT}."):
            p.unlink(missing_ok=True)


def read_manifest(version: Path) -> dict[str, Any]:
    path = version / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing: {rebuild_hint(version.parent)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IndexCorruptError(f"{path} is not valid JSON ({e}): {rebuild_hint(version.parent)}") from None
    fv = manifest.get("format_version")
    if not isinstance(fv, int):
        raise IndexCorruptError(f"{path} has no format_version: {rebuild_hint(version.parent)}")
    if fv > FORMAT_VERSION:
        raise IndexMismatchError(f"the index at {str(version.parent)!r} has format version {fv}, newer than this "
                                 f"rag reads ({FORMAT_VERSION}): upgrade rag, or {rebuild_hint(version.parent)}")
    if fv < FORMAT_VERSION:
        raise IndexMismatchError(f"the index at {str(version.parent)!r} has old format version {fv}: "
                                 f"{rebuild_hint(version.parent)}")
    return manifest


def verify_files(version: Path, manifest: dict[str, Any], *, hashes: bool | None = None) -> None:
    """Check every file the manifest lists: present, same size, and (small indexes) same sha256."""
    files = manifest.get("files", {})
    total = sum(int(v["bytes"]) for v in files.values())
    check_hash = total <= VERIFY_HASH_MAX_BYTES if hashes is None else hashes
    for name, meta in files.items():
        p = version / name
        if not p.is_file():
            raise IndexCorruptError(f"index file {name} is missing from {version}: {rebuild_hint(version.parent)}")
        size = p.stat().st_size
        if size != meta["bytes"]:
            raise IndexCorruptError(f"index file {name} has {size} bytes, the manifest says {meta['bytes']} "
                                    f"(truncated or edited): {rebuild_hint(version.parent)}")
        if check_hash and _sha256(p) != meta["sha256"]:
            raise IndexCorruptError(f"index file {name} was changed after the build (checksum differs): "
                                    f"{rebuild_hint(version.parent)}")


# --- chunk and document tables -----------------------------------------------------------------

def write_jsonl(rows: list[dict[str, Any]]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return write


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise IndexCorruptError(f"{path} line {i} is not valid JSON ({e}): "
                                        f"{rebuild_hint(path.parent.parent)}") from None
    return rows


def read_chunks(version: Path) -> list[Chunk]:
    try:
        chunks = [Chunk.from_dict(r) for r in read_jsonl(version / CHUNKS)]
    except (KeyError, TypeError) as e:
        raise IndexCorruptError(f"{version / CHUNKS} has a row without {e}: {rebuild_hint(version.parent)}") from None
    for row, c in enumerate(chunks):
        if c.end - c.start != len(c.text):
            raise IndexCorruptError(f"chunk {c.chunk_id} (row {row}) has offsets {c.start}:{c.end} that do not "
                                    f"match its text: {rebuild_hint(version.parent)}")
    return chunks


def read_documents(version: Path) -> dict[str, Document]:
    docs = {}
    for r in read_jsonl(version / DOCUMENTS):
        d = Document.from_dict(r)
        docs[d.doc_id] = d
    return docs


# --- vectors -------------------------------------------------------------------------------------

def make_faiss_index(vectors: np.ndarray, spec: dict[str, Any]):
    """A FAISS inner-product index of the kind ``spec`` names (``flat`` or ``hnsw``), filled."""
    import faiss

    d = vectors.shape[1]
    kind = spec.get("type", "flat")
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, int(spec.get("M", 32)), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(spec.get("efConstruction", 80))
        index.hnsw.efSearch = int(spec.get("efSearch", 64))
    else:
        raise ValueError(f"unknown FAISS index type {kind!r}: use 'flat' or 'hnsw'")
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def write_faiss(index) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import faiss

        faiss.write_index(index, str(path))
    return write


def read_faiss(path: Path, spec: dict[str, Any], *, mmap: bool = False):
    import faiss

    try:
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        index = faiss.read_index(str(path), flags)
    except RuntimeError as e:
        raise IndexCorruptError(f"{path} could not be read by FAISS ({str(e).splitlines()[0][:120]}): "
                                f"{rebuild_hint(path.parent.parent)}") from None
    if spec.get("type") == "hnsw" and "efSearch" in spec:
        index.hnsw.efSearch = int(spec["efSearch"])
    return index


def vectors_of(index, rows: list[int]) -> np.ndarray:
    """Stored vectors for the given rows (to reuse them when a document has not changed)."""
    if not rows:
        return np.zeros((0, index.d), dtype=np.float32)
    return np.vstack([index.reconstruct(int(r)) for r in rows]).astype(np.float32)
