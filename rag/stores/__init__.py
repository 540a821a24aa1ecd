"""Vector stores: FAISS files (default) or Milvus (Lite file or server), behind one protocol."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import VectorStore
from .faiss_store import FaissStore

DEFAULT_STORE = "faiss"


def store_kind(spec: str | None) -> str:
    """'faiss' or 'milvus' for a ``--store`` value (raises InputError naming the accepted forms)."""
    if spec in (None, "", "faiss"):
        return "faiss"
    from .milvus_store import parse_milvus_uri

    parse_milvus_uri(spec)
    return "milvus"


def create_store(spec: str | None, *, dimension: int, index_dir: Path, num_chunks: int,
                 faiss_spec: dict[str, Any], ann_threshold: int) -> VectorStore:
    """A new, empty store for one index version."""
    if store_kind(spec) == "faiss":
        return FaissStore.create(dimension, faiss_spec)
    from .milvus_store import MilvusStore

    return MilvusStore.create(spec, dimension, index_dir, num_chunks, ann_threshold)


def open_store(version: Path, manifest: dict[str, Any], chunks, index_dir: Path) -> VectorStore:
    """The store a version's manifest names."""
    entry = manifest.get("vector_store") or {"kind": "faiss"}
    if entry.get("kind", "faiss") == "faiss":
        return FaissStore.open(version, manifest.get("faiss", {}), chunks, int(manifest["dimension"]), index_dir)
    if entry.get("kind") == "milvus":
        from .milvus_store import MilvusStore

        return MilvusStore.open({**entry, "dimension": manifest["dimension"]}, len(chunks), index_dir)
    from ..errors import IndexCorruptError, rebuild_hint

    raise IndexCorruptError(f"{version}/manifest.json names an unknown vector store {entry.get('kind')!r}: "
                            f"{rebuild_hint(index_dir)}")


def check_store(spec: str, *, connect: bool = False) -> None:
    """Validate a ``--store`` value before any work: its extra is installed and, with ``connect``,
    the Milvus it names answers (one-line errors; FAISS needs nothing)."""
    if store_kind(spec) != "milvus":
        return
    from ..errors import need_extra

    need_extra("pymilvus", "the Milvus vector store (--store milvus://...)")
    if connect:
        from .milvus_store import connect as connect_milvus

        connect_milvus(spec)


def store_uri(manifest: dict[str, Any]) -> str:
    """The ``--store`` value that rebuilds into the same place ('faiss' or the Milvus URI)."""
    entry = manifest.get("vector_store") or {"kind": "faiss"}
    return "faiss" if entry.get("kind", "faiss") == "faiss" else entry["uri"]


__all__ = ["VectorStore", "FaissStore", "DEFAULT_STORE", "store_kind", "check_store", "create_store", "open_store",
           "store_uri"]
