"""Shared helpers for the benchmarks: machine facts, RSS, synthetic corpora and indexes.

Not a test module and not part of the library. Synthetic FAISS-only corpora are random unit
vectors (seeded, reproducible); chunk texts are the seed articles' real sentences reshuffled.
Large HNSW indexes take minutes to build, so they are cached in ``CACHE`` (``RAG_BENCH_CACHE``)
and shared between bench_ann.py and bench_latency.py.
"""
from __future__ import annotations

import json
import os
import platform
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = Path(os.environ.get("RAG_BENCH_CACHE", "/tmp/rag-bench-cache"))
DIM = 384  # all-MiniLM-L6-v2


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo", encoding="utf-8"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {mem} RAM, {cpu}, Python {platform.python_version()}"


def rss_mb() -> dict[str, float]:
    """Resident memory of this process in MB: total, anonymous (heap) and file-backed (mmap)."""
    out = {}
    for line in open("/proc/self/status", encoding="utf-8"):
        for key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            if line.startswith(key + ":"):
                out[key] = int(line.split()[1]) / 1024
    return out


def pct(xs, q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000.0, q))


# --- real text -----------------------------------------------------------------------------------

def seed_sentences() -> list[str]:
    """Every body sentence of the seed articles (real text), in order."""
    from rag.documents import load_documents
    from rag.sentences import split_sentences

    docs, _ = load_documents(ROOT / "seeds")
    out = []
    for d in docs:
        for s0, e0 in d.segments:
            for s, e in split_sentences(d.source, s0, e0):
                t = " ".join(d.source[s:e].split())
                if len(t) > 20:
                    out.append(t)
    return out


def write_articles(folder: Path, n_articles: int, sentences_per_article: int, seed: int = 0) -> Path:
    """``n_articles`` .txt articles of the seed sentences shuffled (a title line, then paragraphs)."""
    rng = random.Random(seed)
    pool = seed_sentences()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for a in range(n_articles):
        sents = [rng.choice(pool) for _ in range(sentences_per_article)]
        title = f"Report {a}: " + " ".join(rng.choice(pool).split()[:8]).rstrip(".,")
        paras = [" ".join(sents[i:i + 5]) for i in range(0, len(sents), 5)]
        (folder / f"a{a:05d}.txt").write_text(title + "\n\n" + "\n\n".join(paras) + "\n", encoding="utf-8")
    return folder


# --- random unit vectors ---------------------------------------------------------------------------

def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def random_vectors(n: int, d: int = DIM, seed: int = 0) -> np.ndarray:
    """``n`` uniform random unit vectors (Gaussian, normalised), made in blocks to bound memory."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    for b in range(0, n, 100_000):
        m = min(100_000, n - b)
        out[b:b + m] = unit(rng.standard_normal((m, d), dtype=np.float32))
    return out


def perturbed_queries(base: np.ndarray, nq: int = 200, noise: float = 0.05, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``nq`` queries near stored vectors (cosine ~0.7 to their source at d=384): (queries, source rows)."""
    rng = np.random.default_rng(seed)
    src = rng.choice(len(base), nq, replace=False)
    q = unit(base[src] + noise * rng.standard_normal((nq, base.shape[1]), dtype=np.float32))
    return q, src


def hnsw_cached(vectors: np.ndarray, spec: dict, tag: str, log=print):
    """The HNSW index of ``spec`` over ``vectors``, read from the cache when built before."""
    import faiss

    from rag.stores import faiss_store

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"hnsw-{tag}-n{len(vectors)}-M{spec['M']}-efc{spec['efConstruction']}.faiss"
    if path.is_file():
        index = faiss.read_index(str(path))
        log(f"  (HNSW {len(vectors):,}: read from cache {path})")
        build_s = json.loads(path.with_suffix(".json").read_text())["build_s"]
    else:
        t = time.perf_counter()
        index = faiss_store.make_faiss_index(vectors, spec)
        build_s = time.perf_counter() - t
        faiss.write_index(index, str(path) + ".tmp")
        os.replace(str(path) + ".tmp", path)
        path.with_suffix(".json").write_text(json.dumps({"build_s": build_s}))
    index.hnsw.efSearch = int(spec.get("efSearch", 64))
    return index, build_s, path


# --- synthetic index versions (FAISS + chunk table + BM25, no encoding) ----------------------------

def synthetic_index(n: int, folder: Path, *, seed: int = 0, log=print, spec: dict | None = None) -> Path:
    """An index folder of ``n`` chunks: random unit vectors, real-sentence texts, BM25, manifest.

    Built with rag.index.versions helpers (no encoder), with the FAISS kind ``faiss_spec(n)`` picks, so it
    loads with ``rag.load`` like a real index (model id all-MiniLM-L6-v2, dimension 384).
    """
    from rag.index import versions
    from rag.chunking import ChunkerSettings
    from rag.embedding import DEFAULT_MODEL
    from rag.lexical import LexicalIndex
    from rag.stores import faiss_store
    from rag.stores.faiss_store import faiss_spec

    spec = spec or faiss_spec(n)
    marker = folder / "BENCH.json"
    want = {"n": n, "seed": seed, "faiss": spec}
    if marker.is_file() and json.loads(marker.read_text()) == want:
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    t0 = time.perf_counter()
    vectors = random_vectors(n, seed=seed)
    if spec["type"] == "hnsw":
        index, _, cached = hnsw_cached(vectors, spec, f"uniform-s{seed}", log)
        write_vectors = lambda path: shutil.copyfile(cached, path)  # noqa: E731
    else:
        write_vectors = faiss_store.write_faiss(faiss_store.make_faiss_index(vectors, spec))
    del vectors
    rng = random.Random(seed)
    pool = seed_sentences()
    texts = []
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(pool) for _ in range(3))
        texts.append(text)
        rows.append({"chunk_id": f"s{i // 10:06d}:{i % 10}", "doc_id": f"s{i // 10:06d}", "n": i % 10,
                     "start": 0, "end": len(text), "text": text, "title": "", "tokens": len(text.split())})
    log(f"  ({n:,} synthetic chunks: vectors and texts in {time.perf_counter() - t0:.0f} s; BM25 ...)")
    lexical = LexicalIndex.build(texts)
    del texts
    manifest = {"model": DEFAULT_MODEL, "chunker": ChunkerSettings().to_dict(), "embed_title": True,
                "analysis": False, "docs_dir": None, "dimension": DIM, "metric": "inner_product",
                "faiss": spec, "num_documents": 0, "num_chunks": n, "documents": {}, "skipped_paths": [],
                "warnings": [], "synthetic": True}
    versions.write_version(folder, manifest, {
        faiss_store.VECTORS: write_vectors,
        versions.CHUNKS: versions.write_jsonl(rows),
        versions.CHUNK_OFFSETS: versions.write_line_offsets(versions.CHUNKS),
        versions.DOCUMENTS: versions.write_jsonl([]),
        versions.BM25_DIR: lexical.save,
    })
    marker.write_text(json.dumps(want))
    log(f"  ({n:,}-chunk synthetic index written in {time.perf_counter() - t0:.0f} s at {folder})")
    return folder
