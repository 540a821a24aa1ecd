"""Distributed indexing with Ray Data: read, clean, chunk and embed on a Ray cluster.

``rag index DOCS --ray [ADDRESS]`` (or ``build_index(..., ray=RayOptions(...))``) runs

    read + clean   ray.data.from_items(paths).map(read_article)           tasks, one file per row
    chunk          .flat_map(Chunker)    actors: each holds the encoder's tokenizer (chunks must fit it)
    embed          .map_batches(Encoder)  an actor pool, one model per actor, ``batch_size`` rows a call

and hands the chunks and vectors back to the driver, which writes the index exactly as the
single-process path does (same ``doc_id:n`` chunk ids, offsets, content hashes, incremental
reuse, atomic publication), so an interrupted Ray job leaves the live index untouched.
Deduplication (first file in path order wins) and the spaCy analyses stay on the driver.

Without an address a local cluster is started (``num_cpus`` CPUs, default all); with one, every
node must have this package and its models installed (same version), e.g. from the same image.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..chunking import ChunkerSettings, chunk_document, embed_text
from ..documents import dedupe_documents, list_articles, read_article, require_documents
from ..errors import need_extra
from ..schema import Chunk, Document

# Rows per encoder call. Measured with benchmarks/bench_ray.py on this 2-core machine: 256 rows
# keep the encoder at its single-process speed (the same 4 x 64 the single path uses per call);
# smaller batches pay Ray's per-call overhead, larger ones only add memory.
EMBED_BATCH = 256


@dataclass
class RayOptions:
    """How to run on Ray. ``address`` None starts a local cluster of ``num_cpus`` CPUs."""

    address: str | None = None
    num_cpus: int | None = None
    embed_workers: int | None = None   # encoder actors (default: one per 2 CPUs, at least 1)
    threads_per_worker: int = 2        # torch threads inside each encoder actor
    batch_size: int = EMBED_BATCH

    def check(self) -> None:
        need_extra("ray", "distributed indexing (--ray)")
        if self.batch_size < 1:
            from ..errors import InputError

            raise InputError(f"the Ray embed batch size must be at least 1, got {self.batch_size}")

    def describe(self) -> dict[str, Any]:
        return {"ray": True, "address": self.address or "local", "embed_workers": self.embed_workers,
                "batch_size": self.batch_size}


_started_here = False


def ensure_ray(opts: RayOptions) -> Any:
    """Connect to (or start) the Ray cluster; quiet, no dashboard."""
    global _started_here
    import ray

    if not ray.is_initialized():
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
        if opts.address:
            kwargs["address"] = opts.address
        else:
            kwargs["num_cpus"] = opts.num_cpus or os.cpu_count() or 1
        try:
            ray.init(**kwargs)
        except Exception as e:  # noqa: BLE001
            from ..errors import StoreError

            where = opts.address or "a local cluster"
            raise StoreError(f"cannot start or reach Ray at {where} ({' '.join(str(e).split())[:160]}): check "
                             "the address (ray://HOST:10001 or HOST:6379) or run without --ray") from None
        _started_here = not opts.address
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if hasattr(ctx, "print_on_execution_start"):
        ctx.print_on_execution_start = False
    return ray


def shutdown() -> None:
    """Stop a local cluster this process started (tests; the CLI exits anyway)."""
    global _started_here
    import ray

    if ray.is_initialized() and _started_here:
        ray.shutdown()
        _started_here = False


def _workers(opts: RayOptions, ray) -> int:
    if opts.embed_workers:
        return max(1, int(opts.embed_workers))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, cpus // max(1, opts.threads_per_worker))


# -- stage 1: read + clean --------------------------------------------------------------------

def _read_row(row: dict[str, Any], docs: str, max_bytes: int) -> dict[str, Any]:
    res = read_article(Path(row["path"]), Path(docs), max_bytes)
    if isinstance(res, str):
        return {"i": row["i"], "doc": "", "source": "", "warning": res}
    return {"i": row["i"], "doc": json.dumps(res.to_dict()), "source": res.source, "warning": ""}


def load_documents_on_ray(docs_dir: Path, max_file_bytes: int, opts: RayOptions) -> tuple[list[Document], list[str]]:
    """``load_documents`` with the per-file work (read, decode, clean) as Ray tasks."""
    docs, files, warnings = list_articles(docs_dir)
    results: list[Document | str] = []
    if files:
        ray = ensure_ray(opts)
        ds = ray.data.from_items([{"i": i, "path": str(p)} for i, p in enumerate(files)])
        rows = ds.map(_read_row, fn_kwargs={"docs": str(docs), "max_bytes": int(max_file_bytes)}).take_all()
        rows.sort(key=lambda r: r["i"])
        results = [Document.from_dict(json.loads(r["doc"]), source=r["source"]) if r["doc"] else r["warning"]
                   for r in rows]
    documents = dedupe_documents(files, results, warnings)
    require_documents(documents, files, docs, warnings)
    return documents, warnings


# -- stage 2: chunk; stage 3: embed -----------------------------------------------------------

class _Chunker:
    """Chunks one document per row; holds the encoder's tokenizer (it decides what fits), not its weights."""

    def __init__(self, model_path: str, max_seq_length: int, settings: dict[str, Any]) -> None:
        from ..embedding import EncoderTokens

        self.tokens = EncoderTokens(model_path, max_seq_length)
        self.settings = ChunkerSettings(**settings)

    def __call__(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        doc = Document.from_dict(json.loads(row["doc"]), source=row["source"])
        prefix = f"{doc.title}\n" if doc.title else ""
        fits = self.tokens.fits
        out = []
        for c in chunk_document(doc, self.settings, fits=lambda t, p=prefix: fits(p + t)):
            out.append({"chunk": json.dumps(c.to_dict()), "text": embed_text(c)})
        return out


class _Encoder:
    """One sentence-transformers model per actor; encodes a batch of chunk texts."""

    def __init__(self, model_path: str, threads: int, batch_size: int) -> None:
        import torch

        from ..embedding import Embedder

        torch.set_num_threads(max(1, threads))
        self.embedder = Embedder(model_path, batch_size=64)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # as the single path: less padding
        vecs = np.zeros((len(texts), self.embedder.dimension), dtype=np.float32)
        if texts:
            vecs[order] = self.embedder.encode([texts[i] for i in order])
        return {"chunk": batch["chunk"], "vector": vecs}


def chunk_and_embed(documents: list[Document], settings: ChunkerSettings, embedder, opts: RayOptions,
                    tell=None) -> dict[str, tuple[list[Chunk], np.ndarray]]:
    """Chunks and unit vectors of ``documents``, per doc_id, computed on the Ray cluster."""
    ray = ensure_ray(opts)
    workers = _workers(opts, ray)
    model_path = str(embedder.path)
    if tell:
        tell(f"chunking and embedding on Ray ({workers} encoder worker(s))", 0, len(documents))
    items = [{"doc": json.dumps(d.to_dict()), "source": d.source} for d in documents]
    ds = ray.data.from_items(items)
    pool = getattr(ray.data, "ActorPoolStrategy", None)

    def actors(n: int) -> dict[str, Any]:  # Ray >= 2.51 wants compute=, older ones concurrency=
        return {"compute": pool(size=n)} if pool is not None else {"concurrency": n}

    ds = ds.flat_map(_Chunker, fn_constructor_kwargs={"model_path": model_path,
                                                      "max_seq_length": embedder.max_seq_length,
                                                      "settings": settings.to_dict()},
                     num_cpus=1, **actors(max(1, workers)))
    ds = ds.map_batches(_Encoder, fn_constructor_kwargs={"model_path": model_path,
                                                         "threads": opts.threads_per_worker,
                                                         "batch_size": opts.batch_size},
                        batch_size=opts.batch_size, **actors(workers),
                        num_cpus=min(opts.threads_per_worker, int(ray.cluster_resources().get("CPU", 1))),
                        batch_format="numpy")
    per_doc: dict[str, list[tuple[Chunk, np.ndarray]]] = {}
    for row in ds.iter_rows():
        c = Chunk.from_dict(json.loads(row["chunk"]))
        per_doc.setdefault(c.doc_id, []).append((c, np.asarray(row["vector"], dtype=np.float32)))
    out: dict[str, tuple[list[Chunk], np.ndarray]] = {}
    dim = embedder.dimension
    for d in documents:
        pairs = sorted(per_doc.get(d.doc_id, []), key=lambda cv: cv[0].n)
        chunks = [c for c, _ in pairs]
        vecs = np.vstack([v for _, v in pairs]) if pairs else np.zeros((0, dim), dtype=np.float32)
        out[d.doc_id] = (chunks, vecs)
    if tell:
        tell("embedding chunks", sum(len(c) for c, _ in out.values()), sum(len(c) for c, _ in out.values()))
    return out
