"""Milvus as the vector store: Milvus Lite (one local file) or a Milvus server / cluster.

``pymilvus.MilvusClient`` speaks the same API to both, so one class serves:

    milvus:///abs/path/file.db      Milvus Lite, embedded (the path must end in .db)
    milvus://HOST:PORT              a Milvus standalone server or cluster (= http://HOST:PORT)
    http://HOST:PORT, https://...   the same, explicit scheme

Credentials never go in the URI stored in the manifest: put them in ``MILVUS_TOKEN``
("user:password" or an API key), or in the URI (``milvus://user:pass@host:19530``), from which they
are stripped before anything is written.

Every index version gets its own collection, ``rag_<index-dir hash>_<random>``, with fields
``row`` (INT64 primary key = the chunk's row in the version's chunk table), ``chunk_id``,
``doc_id`` and ``vector`` (FLOAT_VECTOR, inner product). A build fills a new collection and
only then publishes the version; the collections of versions the index no longer keeps are
dropped afterwards. So a failed build (Milvus down mid-way, a crash) leaves the live version and
its collection untouched.
"""
from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import InputError, StoreError, need_extra

INSERT_BATCH = 2000        # rows per insert call (2000 x 384 floats ~ 3 MB per message)
QUERY_BATCH = 1000         # rows per query call when reading vectors back
CONNECT_TIMEOUT = 10.0     # seconds before "Milvus is unreachable"
# Server/cluster: HNSW above this many chunks (as the FAISS store), exact FLAT below. Milvus Lite
# only runs FLAT, which is exact like the FAISS default.
SERVER_HNSW = {"index_type": "HNSW", "params": {"M": 32, "efConstruction": 80}}
SEARCH_EF = 128

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


@dataclass(frozen=True)
class MilvusTarget:
    """Where the vectors go: ``uri`` as pymilvus takes it, ``public`` as the manifest records it."""

    uri: str
    public: str
    lite: bool
    token: str = ""


def parse_milvus_uri(spec: str) -> MilvusTarget:
    """``milvus:///path.db`` -> Milvus Lite; ``milvus://host:port`` / ``http(s)://host:port`` -> server."""
    token = os.environ.get("MILVUS_TOKEN", "")
    if spec.startswith("milvus:///") or (spec.startswith("milvus://") and spec[9:].startswith((".", "~"))):
        raw = spec[len("milvus://"):]
        path = Path(os.path.expanduser(raw)).resolve()
        if path.suffix != ".db":
            raise InputError(f"Milvus Lite needs a file name ending in .db, got {str(path)!r}: "
                             f"use --store milvus://{path.with_suffix('.db')}")
        if not path.parent.is_dir():
            raise InputError(f"the folder of the Milvus Lite file {str(path)!r} does not exist: create it first")
        return MilvusTarget(str(path), f"milvus://{path}", True)
    parts = urlsplit(spec)
    if parts.scheme not in ("milvus", "http", "https") or not parts.hostname:
        raise InputError(f"unknown vector store {spec!r}: use 'faiss', 'milvus:///path/file.db' (Milvus Lite) "
                         "or 'milvus://HOST:PORT' / 'http://HOST:PORT' (a Milvus server)")
    if parts.username:
        token = f"{parts.username}:{parts.password or ''}"
    scheme = "https" if parts.scheme == "https" else "http"
    port = parts.port or 19530
    public = f"{scheme}://{parts.hostname}:{port}"
    return MilvusTarget(public, public, False, token)


def _client(target: MilvusTarget):
    """One MilvusClient per URI and process (Milvus Lite allows one opener of a file)."""
    need_extra("pymilvus", "the Milvus vector store")
    if target.lite:
        need_extra("milvus_lite", "Milvus Lite (milvus:///path.db)")
    with _clients_lock:
        c = _clients.get(target.uri)
        if c is not None:
            return c
        from pymilvus import MilvusClient

        try:
            kwargs = {"uri": target.uri, "timeout": CONNECT_TIMEOUT}
            if target.token:
                kwargs["token"] = target.token
            c = MilvusClient(**kwargs)
            c.list_collections()
        except Exception as e:  # noqa: BLE001 - pymilvus raises several kinds; all mean "cannot use it"
            raise StoreError(f"cannot reach Milvus at {target.public} ({_short(e)}): start the server or fix the "
                             "address (the existing index is untouched)") from None
        _clients[target.uri] = c
        return c


def connect(spec: str) -> None:
    """Open (and cache) the client for ``spec``: raises StoreError when Milvus cannot be reached."""
    _client(parse_milvus_uri(spec))


def close_clients() -> None:
    """Close every cached client (tests; a long-lived process never needs to)."""
    with _clients_lock:
        for c in _clients.values():
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        _clients.clear()


def _short(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    return (msg[:160] + "...") if len(msg) > 160 else msg or type(e).__name__


def collection_prefix(index_dir: Path) -> str:
    return "rag_" + hashlib.sha256(str(Path(index_dir).resolve()).encode()).hexdigest()[:10] + "_"


class MilvusStore:
    """One Milvus collection holding one index version's vectors."""

    kind = "milvus"

    def __init__(self, target: MilvusTarget, collection: str, dimension: int, index_type: str) -> None:
        self.target = target
        self.collection = collection
        self.dimension = int(dimension)
        self.index_type = index_type
        self.client = _client(target)
        self._loaded = False

    # -- creation / opening ---------------------------------------------------------------------
    @classmethod
    def create(cls, spec: str, dimension: int, index_dir: Path, num_chunks: int,
               ann_threshold: int) -> "MilvusStore":
        target = parse_milvus_uri(spec)
        client = _client(target)
        from pymilvus import DataType

        name = collection_prefix(index_dir) + uuid.uuid4().hex[:8]
        index_type = "FLAT" if target.lite or num_chunks < ann_threshold else SERVER_HNSW["index_type"]
        try:
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("row", DataType.INT64, is_primary=True)
            schema.add_field("chunk_id", DataType.VARCHAR, max_length=512)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=512)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dimension))
            params = client.prepare_index_params()
            extra = SERVER_HNSW["params"] if index_type == "HNSW" else {}
            params.add_index(field_name="vector", index_type=index_type, metric_type="IP", params=extra)
            client.create_collection(name, schema=schema, index_params=params)
        except Exception as e:  # noqa: BLE001
            raise StoreError(f"Milvus at {target.public} refused to create collection {name} ({_short(e)}); "
                             "the existing index is untouched") from None
        return cls(target, name, dimension, index_type)

    @classmethod
    def open(cls, entry: dict[str, Any], expect_rows: int, index_dir: Path) -> "MilvusStore":
        """The store a manifest names, checked: the collection exists, with this dimension and size."""
        from ..errors import rebuild_hint

        uri = entry.get("uri", "")
        target = parse_milvus_uri(uri)
        st = cls(target, entry["collection"], int(entry["dimension"]), entry.get("index_type", "FLAT"))
        try:
            if not st.client.has_collection(st.collection):
                raise StoreError(f"Milvus at {target.public} has no collection {st.collection} for the index at "
                                 f"{str(index_dir)!r} (dropped by hand?): {rebuild_hint(index_dir)}")
            desc = st.client.describe_collection(st.collection)
        except StoreError:
            raise
        except Exception as e:  # noqa: BLE001
            raise StoreError(f"cannot read collection {st.collection} at {target.public} ({_short(e)}): "
                             "check that Milvus is running") from None
        dims = [f.get("params", {}).get("dim") for f in desc.get("fields", []) if f.get("name") == "vector"]
        dim = int(dims[0]) if dims and dims[0] is not None else None
        if dim != st.dimension:
            raise StoreError(f"collection {st.collection} at {target.public} holds {dim}-d vectors but the index "
                             f"at {str(index_dir)!r} is {st.dimension}-d: {rebuild_hint(index_dir)}")
        n = st.count()
        if n != expect_rows:
            raise StoreError(f"collection {st.collection} at {target.public} holds {n} vectors for {expect_rows} "
                             f"chunks: {rebuild_hint(index_dir)}")
        return st

    # -- protocol -------------------------------------------------------------------------------
    def add(self, rows: Sequence[int], chunk_ids: Sequence[str], doc_ids: Sequence[str],
            vectors: np.ndarray) -> None:
        if vectors.shape[1:] != (self.dimension,):
            raise StoreError(f"collection {self.collection} takes {self.dimension}-d vectors, got {vectors.shape[1]}-d")
        vectors = np.asarray(vectors, dtype=np.float32)
        try:
            for b in range(0, len(rows), INSERT_BATCH):
                e = min(b + INSERT_BATCH, len(rows))
                self.client.insert(self.collection, [
                    {"row": int(rows[i]), "chunk_id": chunk_ids[i], "doc_id": doc_ids[i], "vector": vectors[i].tolist()}
                    for i in range(b, e)])
            if hasattr(self.client, "flush"):
                self.client.flush(self.collection)
        except Exception as e:  # noqa: BLE001
            raise StoreError(f"writing to Milvus collection {self.collection} at {self.target.public} failed "
                             f"({_short(e)}); the existing index is untouched") from None
        self._loaded = False

    def delete_document(self, doc_id: str) -> int:
        res = self.client.delete(self.collection, filter=f"doc_id == {_quote(doc_id)}")
        return len(res) if isinstance(res, list) else int(res.get("delete_count", 0) if isinstance(res, dict) else 0)

    def _load(self) -> None:
        if not self._loaded:
            self.client.load_collection(self.collection)
            self._loaded = True

    def _search(self, qvecs: np.ndarray, k: int, fields: list[str]):
        self._load()
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.index_type == "HNSW":
            params["params"] = {"ef": max(SEARCH_EF, k)}
        try:
            return self.client.search(self.collection, data=np.asarray(qvecs, dtype=np.float32).tolist(),
                                      limit=int(k), output_fields=fields, search_params=params)
        except Exception as e:  # noqa: BLE001
            raise StoreError(f"searching Milvus collection {self.collection} at {self.target.public} failed "
                             f"({_short(e)}): check that Milvus is running") from None

    def search(self, qvecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, int(k))
        res = self._search(qvecs, k, [])
        scores = np.full((len(qvecs), k), -np.inf, dtype=np.float32)
        rows = np.full((len(qvecs), k), -1, dtype=np.int64)
        for q, hits in enumerate(res):
            for j, h in enumerate(list(hits)[:k]):
                rows[q, j] = int(h["id"] if "id" in h else h["row"])
                scores[q, j] = float(h["distance"])
        return scores, rows

    def search_ids(self, qvecs: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        res = self._search(qvecs, max(1, int(k)), ["chunk_id"])
        return [[(h["entity"]["chunk_id"], float(h["distance"])) for h in hits] for hits in res]

    def count(self) -> int:
        try:
            res = self.client.query(self.collection, filter="", output_fields=["count(*)"])
            return int(res[0]["count(*)"])
        except Exception:  # noqa: BLE001 - fall back to the stats (may lag deletes)
            return int(self.client.get_collection_stats(self.collection).get("row_count", 0))

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        rows = [int(r) for r in rows]
        out = np.zeros((len(rows), self.dimension), dtype=np.float32)
        pos = {r: i for i, r in enumerate(rows)}
        self._load()
        for b in range(0, len(rows), QUERY_BATCH):
            part = rows[b:b + QUERY_BATCH]
            got = self.client.query(self.collection, filter=f"row in {part}", output_fields=["vector"])
            for g in got:
                out[pos[int(g["row"])]] = np.asarray(g["vector"], dtype=np.float32)
            if len(got) != len(part):
                raise StoreError(f"Milvus collection {self.collection} is missing {len(part) - len(got)} rows")
        return out

    def manifest_entry(self) -> dict[str, Any]:
        return {"kind": "milvus", "uri": self.target.public, "lite": self.target.lite,
                "collection": self.collection, "index_type": self.index_type, "metric": "IP",
                "dimension": self.dimension}

    def writers(self) -> dict[str, Callable[[Path], None]]:
        return {}

    def drop(self) -> None:
        try:
            self.client.drop_collection(self.collection)
        except Exception:  # noqa: BLE001 - best effort (a build failing already reports its error)
            pass

    def close(self) -> None:
        pass  # clients are shared per URI (see _client)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def drop_unreferenced(entry: dict[str, Any], index_dir: Path, keep: set[str]) -> list[str]:
    """Drop this index's collections at ``entry``'s URI that no kept version references."""
    try:
        target = parse_milvus_uri(entry["uri"])
        client = _client(target)
        prefix = collection_prefix(index_dir)
        dropped = []
        for name in client.list_collections():
            if name.startswith(prefix) and name not in keep:
                client.drop_collection(name)
                dropped.append(name)
        return dropped
    except Exception:  # noqa: BLE001 - garbage collection is best effort
        return []
