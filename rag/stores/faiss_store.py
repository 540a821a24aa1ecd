"""Everything FAISS: the index kinds and when each is used, build, read (memory-mapped when large),
write, search, and the default vector store (a FAISS file inside the index version folder)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError, rebuild_hint
from . import base

VECTORS = "vectors.faiss"  # the file inside an index version folder

# Exact search below this many chunks, HNSW above. Measured (benchmarks/README.md, 2-core AMD
# EPYC VM, 384-d): one exact single-thread query costs ~8.4 ms per 100k vectors (0.3 ms at 10k,
# ~84 ms at 1M), one question encode ~31 ms; exact search costs as much as the encode itself at
# ~370k vectors. Below 300k exact search adds at most ~25 ms, with perfect recall; above it HNSW
# answers in ~1-3 ms (efSearch 128) at the price of recall (bench_ann.py).
ANN_THRESHOLD = 300_000
HNSW_SPEC = {"type": "hnsw", "M": 32, "efConstruction": 80, "efSearch": 128}

def faiss_spec(num_chunks: int, ann_threshold: int = ANN_THRESHOLD) -> dict[str, Any]:
    return dict(HNSW_SPEC) if num_chunks >= ann_threshold else {"type": "flat"}


SINGLE_THREAD_MAX_QUERIES = 8


def faiss_search(index, qvecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search``, on one OpenMP thread for a few queries.

    faiss splits one query's exact scan over its OpenMP threads; on 2 cores next to torch's own
    thread pool that costs far more than it saves. Measured (benchmarks/README.md), one query,
    IndexFlatIP of 384-d vectors: 10k: 16 ms on 2 threads vs 0.3 ms on 1; 100k: 40 vs 8.4 ms.
    Batches keep every thread (faiss then parallelises over queries).
    """
    import faiss

    q = np.ascontiguousarray(qvecs, dtype=np.float32)
    if len(q) > SINGLE_THREAD_MAX_QUERIES:
        return index.search(q, k)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(q, k)
    finally:
        faiss.omp_set_num_threads(before)


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


def read_faiss(path: Path, spec: dict[str, Any], *, mmap: bool | None = None):
    """Read a FAISS index; ``mmap`` (default: files of at least ``base.MMAP_MIN_BYTES``) maps it read-only.

    faiss's plain IO_FLAG_MMAP only maps IVF inverted lists: flat and HNSW indexes were still
    copied into RAM. IO_FLAG_MMAP_IFC (faiss >= 1.10) maps the vectors of IndexFlat* *and* of
    the flat storage inside IndexHNSWFlat, zero-copy (measured: +0 MB anonymous RSS after
    loading, the vectors stay in the page cache). The HNSW graph itself is small next to the
    vectors (M*2 ints per vector vs 384 floats).
    """
    import faiss

    if mmap is None:
        mmap = path.stat().st_size >= base.MMAP_MIN_BYTES
    try:
        flag = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP)
        flags = flag | faiss.IO_FLAG_READ_ONLY if mmap else 0
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
    keys = np.asarray(rows, dtype=np.int64)
    try:
        return np.ascontiguousarray(index.reconstruct_batch(keys), dtype=np.float32)
    except (AttributeError, RuntimeError):
        return np.vstack([index.reconstruct(int(r)) for r in rows]).astype(np.float32)




class FaissStore:
    """FAISS inner-product index; row i = chunk i. Built in memory, persisted as ``vectors.faiss``."""

    kind = "faiss"

    def __init__(self, index, spec: dict[str, Any], chunk_ids: Sequence[str] | None = None,
                 doc_ids: Sequence[str] | None = None, chunks: Sequence[Any] | None = None) -> None:
        self.index = index
        self.spec = dict(spec)
        self.dimension = int(index.d)
        # Needed only by search_ids / delete_document (the retriever works on rows): given, or
        # read lazily from ``chunks`` (the version's chunk table).
        self._chunk_ids = list(chunk_ids) if chunk_ids is not None else None
        self._doc_ids = list(doc_ids) if doc_ids is not None else None
        self._chunks = chunks

    # -- creation / opening ---------------------------------------------------------------------
    @classmethod
    def create(cls, dimension: int, spec: dict[str, Any]) -> "FaissStore":
        return cls(make_faiss_index(np.zeros((0, dimension), dtype=np.float32), spec), spec, [], [])

    @classmethod
    def open(cls, version: Path, spec: dict[str, Any], chunks: Sequence[Any], dimension: int,
             index_dir: Path) -> "FaissStore":
        """The version's FAISS file (memory-mapped when large), checked against its chunk table."""
        index = read_faiss(version / VECTORS, spec)
        if index.ntotal != len(chunks) or index.d != dimension:
            raise IndexCorruptError(
                f"{version} holds {index.ntotal} vectors of dimension {index.d} for {len(chunks)} chunks of "
                f"dimension {dimension}: {rebuild_hint(index_dir)}")
        return cls(index, spec, chunks=chunks)

    # -- protocol -------------------------------------------------------------------------------
    def add(self, rows: Sequence[int], chunk_ids: Sequence[str], doc_ids: Sequence[str],
            vectors: np.ndarray) -> None:
        rows = list(rows)
        if rows != list(range(self.index.ntotal, self.index.ntotal + len(rows))):
            raise ValueError("FaissStore.add takes rows in order, continuing the existing ones")
        if len(rows):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._ids().extend(chunk_ids)
        self._docs().extend(doc_ids)

    def delete_document(self, doc_id: str) -> int:
        """Drops the document's rows; later rows move up (FAISS renumbers), as a rebuild would."""
        import faiss

        docs = self._docs()
        gone = [i for i, d in enumerate(docs) if d == doc_id]
        if not gone:
            return 0
        if isinstance(self.index, faiss.IndexHNSWFlat):
            keep = [i for i in range(len(docs)) if docs[i] != doc_id]
            vecs = self.vectors(keep)
            self.index = make_faiss_index(vecs, self.spec)
        else:
            self.index.remove_ids(np.asarray(gone, dtype=np.int64))
        ids = self._ids()
        self._chunk_ids = [c for c, d in zip(ids, docs) if d != doc_id]
        self._doc_ids = [d for d in docs if d != doc_id]
        return len(gone)

    def search(self, qvecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return faiss_search(self.index, qvecs, k)

    def search_ids(self, qvecs: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        scores, rows = self.search(qvecs, min(k, max(self.count(), 1)))
        ids = self._ids()
        return [[(ids[int(r)], float(s)) for r, s in zip(rr, ss) if r >= 0] for rr, ss in zip(rows, scores)]

    def count(self) -> int:
        return int(self.index.ntotal)

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        return vectors_of(self.index, list(rows))

    def manifest_entry(self) -> dict[str, Any]:
        return {"kind": "faiss", "file": VECTORS, "index_type": self.spec.get("type", "flat"),
                "metric": "inner_product"}

    def writers(self) -> dict[str, Callable[[Path], None]]:
        return {VECTORS: write_faiss(self.index)}

    def close(self) -> None:
        pass

    # -- helpers --------------------------------------------------------------------------------
    def _ids(self) -> list[str]:
        if self._chunk_ids is None:
            self._load_ids()
        return self._chunk_ids

    def _docs(self) -> list[str]:
        if self._doc_ids is None:
            self._load_ids()
        return self._doc_ids

    def _load_ids(self) -> None:
        chunks = self._chunks
        if chunks is None:
            raise ValueError("this FaissStore was opened without its chunk table: chunk ids are unknown")
        self._chunk_ids = [c.chunk_id for c in chunks]
        self._doc_ids = [c.doc_id for c in chunks]
