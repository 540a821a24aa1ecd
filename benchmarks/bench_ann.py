"""Recall@10 of HNSW against exact search, and its query time as a ratio to exact, in one run.

    python benchmarks/bench_ann.py [--sizes 100000,1000000] [--ef 32,64,128,256,512,1024]

Data: uniform random unit vectors in 384 dimensions (the worst case for a graph index: no
cluster structure at all); queries: 200 stored vectors plus Gaussian noise (cosine ~0.7 to
their source), so the true top-1 is the source and the rest are its nearest neighbours.
Times are single-query (one question at a time, as `rag ask` runs, on one OpenMP thread as
rag.stores.faiss_store.faiss_search does), median over the 200 queries. HNSW M / efConstruction come from rag.stores.faiss_store.HNSW_SPEC
(or --M / --efc); efSearch is swept, and the smallest value with recall@10 >= --target is
reported. Large HNSW indexes are cached (benchmarks/_common.py CACHE) for bench_latency.py.
``--data`` picks the data sets built at every size: ``uniform`` (above) and/or ``lowrank``
(32 latent dimensions + noise, "embedding-like": a sentence encoder's vectors have structure).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DIM, ROOT, hnsw_cached, machine, perturbed_queries, random_vectors, unit  # noqa: E402


def single_query_times(index, queries: np.ndarray, k: int = 10) -> tuple[list[float], np.ndarray]:
    """One query at a time through rag.stores.faiss_store.faiss_search (one OpenMP thread, as rag runs it)."""
    from rag.stores.faiss_store import faiss_search

    times, rows = [], []
    faiss_search(index, queries[:1], k)  # warm
    for q in queries:
        t = time.perf_counter()
        _, r = faiss_search(index, q[None, :], k)
        times.append(time.perf_counter() - t)
        rows.append(r[0])
    return times, np.array(rows)


def lowrank_vectors(n: int, seed: int, rank: int = 32) -> np.ndarray:
    """Unit vectors near a random ``rank``-dimensional subspace (noise norm ~0.3 of the signal)."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((rank, DIM)).astype(np.float32)
    z = rng.standard_normal((n, rank)).astype(np.float32)
    return unit(z @ basis + 0.3 * np.sqrt(rank) * rng.standard_normal((n, DIM)).astype(np.float32))


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def run_size(n: int, vectors: np.ndarray, spec: dict, efs: list[int], target: float, tag: str,
             queries: np.ndarray | None = None) -> dict:
    import faiss

    if queries is None:
        queries, src = perturbed_queries(vectors)
    else:
        src = None
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    exact_t, truth = single_query_times(flat, queries)
    if src is not None:
        assert float(np.mean(truth[:, 0] == src)) > 0.99, "the perturbed queries' top-1 should be their source"
    del flat
    index, build_s, _ = hnsw_cached(vectors, spec, tag)
    exact_ms = statistics.median(exact_t) * 1000
    print(f"\n{tag}, n={n:,}: exact (IndexFlatIP) p50 {exact_ms:.2f} ms/query; "
          f"HNSW M={spec['M']} efConstruction={spec['efConstruction']} built in {build_s:.0f} s")
    print(f"  {'efSearch':>8s} {'recall@10':>10s} {'recall@1':>9s} {'p50 ms':>8s} {'p95 ms':>8s} {'time / exact':>13s}")
    rows = []
    chosen = None
    for ef in efs:
        index.hnsw.efSearch = ef
        t, found = single_query_times(index, queries)
        r10 = recall_at(found, truth)
        r1 = float(np.mean(found[:, 0] == truth[:, 0]))
        p50 = statistics.median(t) * 1000
        p95 = float(np.percentile(np.array(t) * 1000, 95))
        rows.append({"efSearch": ef, "recall@10": r10, "recall@1": r1, "p50_ms": p50, "p95_ms": p95,
                     "ratio": p50 / exact_ms})
        mark = ""
        if chosen is None and r10 >= target:
            chosen = ef
            mark = "  <- smallest efSearch meeting the target"
        print(f"  {ef:8d} {r10:10.3f} {r1:9.3f} {p50:8.2f} {p95:8.2f} {p50 / exact_ms:13.3f}{mark}")
    return {"n": n, "data": tag, "exact_p50_ms": exact_ms, "build_s": build_s, "M": spec["M"],
            "efConstruction": spec["efConstruction"], "sweep": rows, "chosen_efSearch": chosen}


def main(argv=None) -> int:
    from rag.stores.faiss_store import HNSW_SPEC

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--ef", default="32,64,128,256,512,1024")
    ap.add_argument("--M", type=int, default=HNSW_SPEC["M"])
    ap.add_argument("--efc", type=int, default=HNSW_SPEC["efConstruction"])
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--data", default="uniform,lowrank",
                    help="comma-separated data sets built at every size: uniform, lowrank (default both)")
    ap.add_argument("--real", default=None, metavar="INDEX",
                    help="also an index's real MiniLM vectors, queried with the gold questions encoded")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ann.json"))
    a = ap.parse_args(argv)
    import faiss

    sizes = [int(s) for s in a.sizes.split(",")]
    efs = [int(e) for e in a.ef.split(",")]
    spec = {"type": "hnsw", "M": a.M, "efConstruction": a.efc}
    print(machine())
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; d={DIM}; 200 perturbed queries; "
          f"target recall@10 >= {a.target}")
    kinds = [k.strip() for k in a.data.split(",") if k.strip()]
    unknown = sorted(set(kinds) - {"uniform", "lowrank"})
    if unknown:
        ap.error(f"--data {','.join(unknown)}: unknown data set; use uniform and/or lowrank")
    results = []
    for n in sizes:
        if "uniform" in kinds:
            results.append(run_size(n, random_vectors(n, seed=0), spec, efs, a.target, "uniform-s0"))
        if "lowrank" in kinds:
            results.append(run_size(n, lowrank_vectors(n, seed=7), spec, efs, a.target, "lowrank32-s7"))
    if a.real:
        from rag.embedding import Embedder
        from rag.index import open_index

        idx = open_index(a.real)
        real = idx.vectors.reconstruct_n(0, idx.vectors.ntotal)
        gold = [json.loads(line)["question"] for line in open(ROOT / "evals" / "gold.jsonl", encoding="utf-8")]
        results.append(run_size(len(real), real, spec, efs, a.target, f"real-minilm-{len(real)}",
                                queries=Embedder().encode(gold)))
    # Where exact search starts to cost more than encoding the question itself (it would then
    # more than double dense retrieval's floor): a least-squares line through the exact timings.
    from rag.embedding import Embedder

    emb = Embedder()
    qs = [json.loads(line)["question"] for line in open(ROOT / "evals" / "gold.jsonl", encoding="utf-8")][:60]
    emb.encode(qs[:5])
    enc = []
    for q in qs:
        t = time.perf_counter()
        emb.encode([q])
        enc.append(time.perf_counter() - t)
    enc_ms = statistics.median(enc) * 1000
    synth = [r for r in results if not r["data"].startswith("real")]
    ns = np.array([r["n"] for r in synth], dtype=float)
    ts = np.array([r["exact_p50_ms"] for r in synth])
    slope = float(ns @ ts / (ns @ ns))  # ms per vector
    crossover = enc_ms / slope
    print(f"\none question encode: p50 {enc_ms:.2f} ms; exact search ~{slope * 1e6:.2f} ms per million vectors "
          f"(fit through {', '.join(f'{int(n):,}' for n in ns)}) -> exact costs one encode at ~{crossover:,.0f} vectors")
    print("\nsummary (smallest efSearch with recall@10 >= target):")
    for r in results:
        ch = next((s for s in r["sweep"] if s["efSearch"] == r["chosen_efSearch"]), None)
        if ch:
            print(f"  {r['data']:12s} n={r['n']:>9,}: efSearch {ch['efSearch']}, recall@10 {ch['recall@10']:.3f}, "
                  f"HNSW {ch['p50_ms']:.2f} ms vs exact {r['exact_p50_ms']:.2f} ms (ratio {ch['ratio']:.3f})")
        else:
            print(f"  {r['data']:12s} n={r['n']:>9,}: no efSearch in {efs} reached {a.target}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"machine": machine(), "results": results, "encode_p50_ms": enc_ms,
                                       "exact_ms_per_vector": slope, "crossover_vectors": crossover}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
