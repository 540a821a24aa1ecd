"""The vector store protocol: where an index version keeps its chunk vectors.

Row ``i`` of a store is chunk ``i`` of the version's chunk table, so a search result maps to a
chunk (and its exact offsets) without another lookup. A store belongs to one index version: a
build creates a new one, fills it, and only then publishes the version (``rag.index.versions``), so a
failed build never touches the live store.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

# FAISS files and BM25 folders at least this large are memory-mapped on load instead of copied
# into RAM (the page cache holds them; several processes share one copy). Below it, reading is
# as fast and the index is small anyway. benchmarks/README.md has the RSS figures.
MMAP_MIN_BYTES = 64 * 1024 * 1024


@runtime_checkable
class VectorStore(Protocol):
    """What the indexer and the retriever need from a vector store."""

    kind: str          # "faiss" or "milvus"
    dimension: int

    def add(self, rows: Sequence[int], chunk_ids: Sequence[str], doc_ids: Sequence[str],
            vectors: np.ndarray) -> None:
        """Store ``vectors[i]`` as row ``rows[i]`` (chunk ``chunk_ids[i]`` of ``doc_ids[i]``)."""

    def delete_document(self, doc_id: str) -> int:
        """Remove every chunk vector of ``doc_id``; returns how many were removed."""

    def search(self, qvecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows per query by inner product: ``(scores, rows)``, shape (n, k), row -1 = none."""

    def search_ids(self, qvecs: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """Top ``k`` (chunk id, score) pairs per query, best first."""

    def count(self) -> int:
        """How many vectors the store holds."""

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """The stored vectors of ``rows`` (to reuse them for unchanged documents)."""

    def manifest_entry(self) -> dict[str, Any]:
        """What the manifest records about this store (never credentials)."""

    def writers(self) -> dict[str, Callable[[Path], None]]:
        """Files to write into the new version folder (FAISS: its index file; Milvus: none)."""

    def close(self) -> None:
        """Release connections (idempotent)."""
