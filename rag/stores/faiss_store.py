"""The default vector store: a FAISS file inside the index version folder (flat or HNSW)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import store as disk


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
        return cls(disk.make_faiss_index(np.zeros((0, dimension), dtype=np.float32), spec), spec, [], [])

    @classmethod
    def open(cls, version: Path, spec: dict[str, Any], chunks: Sequence[Any], dimension: int,
             index_dir: Path) -> "FaissStore":
        """The version's FAISS file (memory-mapped when large), checked against its chunk table."""
        index = disk.read_faiss(version / disk.VECTORS, spec)
        if index.ntotal != len(chunks) or index.d != dimension:
            raise disk.IndexCorruptError(
                f"{version} holds {index.ntotal} vectors of dimension {index.d} for {len(chunks)} chunks of "
                f"dimension {dimension}: {disk.rebuild_hint(index_dir)}")
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
            self.index = disk.make_faiss_index(vecs, self.spec)
        else:
            self.index.remove_ids(np.asarray(gone, dtype=np.int64))
        ids = self._ids()
        self._chunk_ids = [c for c, d in zip(ids, docs) if d != doc_id]
        self._doc_ids = [d for d in docs if d != doc_id]
        return len(gone)

    def search(self, qvecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        from ..retrieval import faiss_search

        return faiss_search(self.index, qvecs, k)

    def search_ids(self, qvecs: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        scores, rows = self.search(qvecs, min(k, max(self.count(), 1)))
        ids = self._ids()
        return [[(ids[int(r)], float(s)) for r, s in zip(rr, ss) if r >= 0] for rr, ss in zip(rows, scores)]

    def count(self) -> int:
        return int(self.index.ntotal)

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        return disk.vectors_of(self.index, list(rows))

    def manifest_entry(self) -> dict[str, Any]:
        return {"kind": "faiss", "file": disk.VECTORS, "index_type": self.spec.get("type", "flat"),
                "metric": "inner_product"}

    def writers(self) -> dict[str, Callable[[Path], None]]:
        return {disk.VECTORS: disk.write_faiss(self.index)}

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
