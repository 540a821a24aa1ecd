"""Building an index from a docs folder: incremental (unchanged articles keep their chunks and
vectors), atomic (a new version folder, then one pointer swap), on FAISS or Milvus."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import body_sentence_spans, start_analysis
from ..chunking import ChunkerSettings, chunk_document, embed_text
from ..documents import DEFAULT_MAX_FILE_BYTES, check_docs_dir, load_documents
from ..embedding import Embedder
from ..errors import IndexMismatchError, StoreError
from ..lexical import LexicalIndex
from ..schema import Chunk, Document, IndexInfo
from ..stores import check_store, create_store, store_kind, store_uri
from ..stores.faiss_store import ANN_THRESHOLD, faiss_spec
from . import versions
from .opened import OpenIndex, open_index

BuildProgress = Callable[[str, int, int], None]  # (stage, done, total)


def console_progress(enabled: bool = True) -> BuildProgress | None:
    """A ``progress`` for ``build_index`` that draws one tqdm bar per stage on stderr (``None``:
    quiet). Stages without a total print one line."""
    if not enabled:
        return None
    import sys

    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def tell(stage: str, done: int, total: int) -> None:
        if total <= 0:
            print(f"{stage} ...", file=sys.stderr)
            return
        bar = bars.get(stage) or bars.setdefault(stage, tqdm(total=total, desc=stage, file=sys.stderr, leave=False))
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
    return tell


def build_index(docs_dir: str | os.PathLike, index_dir: str | os.PathLike = "index", *,
                model: str | os.PathLike | None = None, embedder: Embedder | None = None,
                chunker: ChunkerSettings | None = None, force: bool = False,
                ann_threshold: int = ANN_THRESHOLD, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                analyze: bool = True, progress: BuildProgress | None = None, vector_store: str | None = None,
                ray: Any = None) -> IndexInfo:
    """Index the ``.txt`` articles below ``docs_dir`` into ``index_dir``, incrementally.

    Articles whose content hash, model and chunker settings match the live index reuse their
    chunks and vectors; only new or changed ones are encoded; deleted ones are dropped. When
    nothing changed, nothing is written and ``IndexInfo.rebuilt`` is False. The new version
    replaces the old one atomically; a failure leaves the old one live. ``analyze`` also stores
    spaCy sentence analyses and sentence vectors for the feature reader.

    ``vector_store`` is where the vectors go: ``"faiss"`` (a file in the version folder) or a Milvus URI
    (``milvus:///path.db`` for Milvus Lite, ``milvus://HOST:PORT`` for a server); None keeps the
    live index's store (FAISS for a new index). ``ray`` (a ``rag.index.distributed.RayOptions``, or
    True for a local cluster) reads, cleans, chunks and embeds on a Ray cluster; the result is the
    same index as the single-process path.
    """
    t0 = time.perf_counter()
    index_dir = Path(index_dir)
    docs_dir = check_docs_dir(docs_dir)  # before the lock: a mistyped folder creates no index folder
    chunker = chunker or ChunkerSettings()
    ray_opts = None
    if ray:
        from .distributed import RayOptions

        ray_opts = ray if isinstance(ray, RayOptions) else RayOptions(address=None if ray is True else str(ray))
        ray_opts.check()
    if vector_store is not None:
        check_store(vector_store)
    embedder = embedder or Embedder(model)
    tell = progress or (lambda stage, done, total: None)

    with versions.build_lock(index_dir, on_wait=lambda: tell("waiting for another build of this index", 0, 0)):
        live_uri = _live_store_uri(index_dir)
        target = vector_store if vector_store is not None else live_uri or "faiss"
        check_store(target, connect=True)  # before any encoding
        tell("reading articles", 0, 0)
        if ray_opts is not None:
            from . import distributed

            documents, warnings = distributed.load_documents_on_ray(docs_dir, max_file_bytes, ray_opts)
        else:
            documents, warnings = load_documents(docs_dir, max_file_bytes=max_file_bytes)
        previous = _previous(index_dir, embedder, chunker)
        prev_docs = previous.manifest["documents"] if previous else {}
        settings = _settings(embedder, chunker, docs_dir, analyze)
        unchanged = {d.doc_id for d in documents
                     if d.doc_id in prev_docs and prev_docs[d.doc_id]["content_hash"] == d.content_hash}
        if (previous and not force and unchanged == set(prev_docs) == {d.doc_id for d in documents}
                and all(previous.manifest.get(k) == v for k, v in settings.items())
                and _same_store(store_uri(previous.manifest), target)):
            return IndexInfo(str(index_dir), len(documents), len(previous.chunks), embedder.model_id,
                             previous.dimension, rebuilt=False, encoded_chunks=0,
                             warnings=tuple(warnings), seconds=time.perf_counter() - t0)

        prev_rows: dict[str, list[int]] = {}
        if previous and not force:
            for i, c in enumerate(previous.chunks):
                if c.doc_id in unchanged:
                    prev_rows.setdefault(c.doc_id, []).append(i)
        fresh_docs = [d for d in documents if d.doc_id not in prev_rows]
        ray_out: dict[str, tuple[list[Chunk], np.ndarray]] = {}
        if ray_opts is not None and fresh_docs:
            ray_out = distributed.chunk_and_embed(fresh_docs, chunker, embedder, ray_opts, tell)
        chunks: list[Chunk] = []
        reuse_rows: list[int] = []  # row in the previous index, or -1 for chunks to encode
        fresh_vecs: list[tuple[int, np.ndarray]] = []  # (first row, vectors) computed by Ray
        fits = embedder.fits
        for n, doc in enumerate(documents):
            tell("chunking", n, len(documents))
            if doc.doc_id in prev_rows:
                rows = prev_rows[doc.doc_id]
                chunks.extend(previous.chunks[r] for r in rows)
                reuse_rows.extend(rows)
            elif doc.doc_id in ray_out:
                new, vecs = ray_out[doc.doc_id]
                fresh_vecs.append((len(chunks), vecs))
                chunks.extend(new)
                reuse_rows.extend([-2] * len(new))
            else:
                prefix = f"{doc.title}\n" if doc.title else ""
                new = chunk_document(doc, chunker, fits=lambda t, p=prefix: fits(p + t))
                chunks.extend(new)
                reuse_rows.extend([-1] * len(new))
        to_encode = [i for i, r in enumerate(reuse_rows) if r == -1]
        vectors = np.zeros((len(chunks), embedder.dimension), dtype=np.float32)
        for first, vecs in fresh_vecs:
            vectors[first:first + len(vecs)] = vecs
        if previous:
            kept = [i for i, r in enumerate(reuse_rows) if r >= 0]
            if kept:
                vectors[kept] = previous.store.vectors([reuse_rows[i] for i in kept])
        # The feature reader's sentence analyses (spaCy) run in a worker process while this one
        # encodes the chunks and then the sentences (their texts are known before the parse).
        to_analyse = [d for d in documents if force or not _reusable_analysis(previous, d.doc_id, unchanged)] \
            if analyze else []
        sentences = _body_sentences(to_analyse)
        job = start_analysis(to_analyse)
        try:
            _encode_all(embedder, [embed_text(chunks[i]) for i in to_encode], vectors, to_encode,
                        "embedding chunks", tell, job)
            sent_matrix = np.zeros((len(sentences), embedder.dimension), dtype=np.float32)
            _encode_all(embedder, [t for _, _, t in sentences], sent_matrix, list(range(len(sentences))),
                        "embedding sentences", tell, job)
            if to_analyse:
                tell("analysing sentences", 0, len(to_analyse))
            analysed = job.result()
        finally:
            job.close()
        sent_vecs = {(doc_id, start): sent_matrix[i] for i, (doc_id, start, _) in enumerate(sentences)}
        n_encoded = len(to_encode) + sum(len(v) for _, v in fresh_vecs)
        tell("embedding chunks", n_encoded, n_encoded)
        tell("writing index", 0, 0)
        spec = faiss_spec(len(chunks), ann_threshold)
        lexical = LexicalIndex.build([embed_text(c) for c in chunks])
        per_doc: dict[str, int] = {}
        for c in chunks:
            per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
        vstore = create_store(target, dimension=embedder.dimension, index_dir=index_dir, num_chunks=len(chunks),
                              faiss_spec=spec, ann_threshold=ann_threshold)
        try:
            tell("storing vectors", 0, len(chunks))
            vstore.add(range(len(chunks)), [c.chunk_id for c in chunks], [c.doc_id for c in chunks], vectors)
            manifest = {
                **settings,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "dimension": embedder.dimension,
                "metric": "inner_product",
                "vector_store": vstore.manifest_entry(),
                **({"faiss": spec} if vstore.kind == "faiss" else {}),
                "num_documents": len(documents),
                "num_chunks": len(chunks),
                "documents": {d.doc_id: _doc_meta(d, docs_dir, per_doc.get(d.doc_id, 0)) for d in documents},
                "skipped_paths": _skipped(warnings, docs_dir),
                "warnings": warnings,
            }
            if ray_opts is not None:
                manifest["built_with"] = ray_opts.describe()
            writers = {
                **vstore.writers(),
                versions.CHUNKS: versions.write_jsonl([c.to_dict() for c in chunks]),
                versions.CHUNK_OFFSETS: versions.write_line_offsets(versions.CHUNKS),  # after CHUNKS: it indexes that file
                versions.DOCUMENTS: versions.write_jsonl([d.to_dict() for d in documents]),
                versions.SOURCES: versions.write_jsonl([{"doc_id": d.doc_id, "text": d.source} for d in documents]),
                versions.SOURCE_OFFSETS: versions.write_line_offsets(versions.SOURCES),  # after SOURCES
                versions.BM25_DIR: lexical.save,
            }
            if analyze:
                rows, svecs = _analyses(documents, analysed, previous, sent_vecs, embedder.dimension)
                writers[versions.ANALYSIS] = versions.write_jsonl(rows)
                writers[versions.SENTENCE_VECTORS] = lambda path: np.save(path, svecs, allow_pickle=False)
            versions.write_version(index_dir, manifest, writers)
        except BaseException:
            if vstore.kind == "milvus":
                vstore.drop()  # the half-filled collection of a version that was never published
            raise
        _collect_collections(index_dir, {live_uri, target})
    return IndexInfo(str(index_dir), len(documents), len(chunks), embedder.model_id, embedder.dimension,
                     rebuilt=True, encoded_chunks=n_encoded, warnings=tuple(warnings),
                     seconds=time.perf_counter() - t0)


def _same_store(a: str | None, b: str | None) -> bool:
    if store_kind(a) != store_kind(b):
        return False
    if store_kind(a) == "faiss":
        return True
    from ..stores.milvus_store import parse_milvus_uri

    return parse_milvus_uri(a).public == parse_milvus_uri(b).public


def _live_store_uri(index_dir: Path) -> str | None:
    """The store of the live version (None when there is no readable index)."""
    try:
        return store_uri(versions.read_manifest(versions.current_version(index_dir)))
    except (versions.IndexNotFoundError, versions.IndexCorruptError, IndexMismatchError, OSError, ValueError, KeyError):
        return None


def _collect_collections(index_dir: Path, uris: set[str | None]) -> None:
    """Drop the Milvus collections of this index that no version left on disk references."""
    uris = {u for u in uris if u and store_kind(u) == "milvus"}
    if not uris:
        return
    keep: set[str] = set()
    for v in index_dir.glob("v-*"):
        try:
            entry = versions.read_manifest(v).get("vector_store") or {}
        except Exception:  # noqa: BLE001 - an unreadable version references nothing we can keep
            continue
        if entry.get("kind") == "milvus":
            keep.add(entry["collection"])
            uris.add(entry["uri"])
    from ..stores.milvus_store import drop_unreferenced

    for uri in uris:
        drop_unreferenced({"uri": uri}, index_dir, keep)


def _settings(embedder: Embedder, chunker: ChunkerSettings, docs_dir: Path, analyze: bool) -> dict[str, Any]:
    return {"model": embedder.model_id, "chunker": chunker.to_dict(), "embed_title": True,
            "analysis": analyze, "docs_dir": str(docs_dir.resolve()), "sources": versions.SOURCES_LAYOUT}


def _reusable_analysis(previous: OpenIndex | None, doc_id: str, unchanged: set[str]) -> bool:
    """True when the live index's analyses and sentence vectors of an unchanged article can be kept."""
    return (previous is not None and doc_id in unchanged and previous.has_analysis
            and doc_id in previous.analysis_rows())


def _body_sentences(documents: list[Document]) -> list[tuple[str, int, str]]:
    """(doc_id, start, text) of every body sentence: the sentences ``analyze_document`` analyses."""
    return [(d.doc_id, s, d.source[s:e]) for d in documents for s, e in body_sentence_spans(d)]


def _encode_all(embedder: Embedder, texts: list[str], out: np.ndarray, rows: list[int], stage: str,
                tell: BuildProgress, job=None) -> None:
    """Encode ``texts`` into ``out[rows]``, longest first, leaving a core to ``job`` while it runs.

    Longest first, so each batch holds texts of about one length: less padding than the document
    order (the encoder sorts only within one call). Measured in bench_index.py.
    """
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    batch = max(embedder.batch_size * 4, 256)
    b = 0
    while b < len(order):
        tell(stage, b, len(order))
        sharing = job is not None and job.running
        # Small batches while the worker runs, so the encoder takes both cores back soon after.
        part = order[b:b + (embedder.batch_size if sharing else batch)]
        b += len(part)
        with _cores_shared(sharing):
            out[[rows[i] for i in part]] = embedder.encode([texts[i] for i in part])


@contextmanager
def _cores_shared(sharing: bool):
    """One torch thread fewer while a spaCy worker runs beside the encoder.

    Three busy threads on two cores make torch's thread pool wait on a descheduled thread; on this
    2-core machine one encoder thread has 0.57x the throughput of two, and a core to itself lets
    the worker finish sooner (benchmarks/bench_index.py measures the effect).
    """
    if not sharing:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(threads - 1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _analyses(documents: list[Document], analysed: dict[str, list[dict[str, Any]]], previous: OpenIndex | None,
              sent_vecs: dict[tuple[str, int], np.ndarray], dimension: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Sentence analyses and vectors for every document, in document order.

    ``analysed`` holds the new analyses (sentence rows) by article; every other article keeps the
    live index's. New sentences take their vector from ``sent_vecs`` (by article and start
    offset, encoded beside the parse from the same ``body_sentence_spans``).
    """
    prev_rows = previous.analysis_rows() if previous is not None and previous.has_analysis else {}
    prev_vecs = previous.sentence_vectors() if prev_rows else None
    rows_out: list[dict[str, Any]] = []
    reused: list[tuple[int, int]] = []  # (new row, previous row)
    fresh: list[tuple[int, np.ndarray]] = []  # (new row, vector encoded beside the parse)
    next_row = 0
    for doc in documents:
        new = doc.doc_id in analysed
        sents = [dict(r) for r in (analysed[doc.doc_id] if new else prev_rows[doc.doc_id])]
        for r in sents:
            if new:
                fresh.append((next_row, sent_vecs[(doc.doc_id, r["s"])]))
            else:
                reused.append((next_row, r["row"]))
            r["row"] = next_row
            next_row += 1
        rows_out.append({"doc_id": doc.doc_id, "sentences": sents})
    svecs = np.zeros((next_row, dimension), dtype=np.float32)
    if reused:
        svecs[[a for a, _ in reused]] = prev_vecs[[b for _, b in reused]]
    if fresh:
        svecs[[a for a, _ in fresh]] = np.stack([v for _, v in fresh])
    return rows_out, svecs


def _doc_meta(doc: Document, docs_dir: Path, num_chunks: int) -> dict[str, Any]:
    st = (docs_dir / doc.path).stat()
    return {"path": doc.path, "title": doc.title, "format": doc.format, "content_hash": doc.content_hash,
            "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "num_chunks": num_chunks}


def _skipped(warnings: list[str], docs_dir: Path) -> list[str]:
    out = []
    for w in warnings:
        path = w.split(": ", 1)[0]
        try:
            out.append(Path(path).relative_to(docs_dir).as_posix())
        except ValueError:
            continue
    return out


def _previous(index_dir: Path, embedder: Embedder, chunker: ChunkerSettings) -> OpenIndex | None:
    """The live index when its vectors can be reused (same model and chunker), else None."""
    try:
        prev = open_index(index_dir)
    except versions.IndexNotFoundError:
        return None
    except (versions.IndexCorruptError, IndexMismatchError, StoreError):
        return None  # rebuilt from scratch; the broken version is replaced atomically
    if prev.manifest.get("model") != embedder.model_id or prev.manifest.get("chunker") != chunker.to_dict():
        return None
    return prev
