"""Scale-out figures for docs/scaling.md: Ray vs single-process indexing, Milvus Lite vs FAISS.

    python benchmarks/bench_scale_out.py [--articles 200] [--vectors 100000]

1. Indexing throughput (chunks/s) of the same synthetic corpus (seed sentences reshuffled, real
   text) three ways, each into a fresh index, analyses off (the spaCy step is the same on both
   paths): single process; Ray Data on a local cluster with 1 encoder actor; with 2 actors (1
   torch thread each). Also the raw encoder throughput on the same texts, and Ray's fixed
   start-up cost (ray.init + first actor) measured separately, so the overhead is explained.
2. Embedding throughput per Ray worker = chunks/s of the Ray run / encoder actors.
3. Milvus Lite: insert rate (vectors/s, batches of 2,000) and single-query search latency p50/p95
   at ``--vectors`` random unit vectors (384-d), next to exact FAISS (IndexFlatIP, one thread, as
   rag.retrieval runs it) on the same vectors and queries; top-10 agreement between the two.

Prints ratios measured in one run (timings on a shared 2-core VM are noisy).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import machine, pct, perturbed_queries, random_vectors, write_articles


def index_run(docs: Path, out: Path, embedder, ray=None, store=None) -> tuple[float, int]:
    import rag

    if out.exists():
        shutil.rmtree(out)
    t = time.perf_counter()
    info = rag.build_index(docs, out, embedder=embedder, analyze=False, ray=ray, vector_store=store)
    return time.perf_counter() - t, info.num_chunks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=200)
    ap.add_argument("--vectors", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    from rag.index import distributed
    from rag.embedding import Embedder
    from rag.chunking import embed_text
    from rag.index import open_index
    from rag.stores.faiss_store import faiss_search

    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-scale-"))
    try:
        docs = write_articles(tmp / "docs", args.articles, 20)
        emb = Embedder()
        emb.encode(["warm up"])
        # 1. single process
        t_single, n = index_run(docs, tmp / "single", emb)
        chunks = list(open_index(tmp / "single").chunks)
        texts = [embed_text(c) for c in chunks]
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        t = time.perf_counter()
        emb.encode([texts[i] for i in order])
        t_raw = time.perf_counter() - t
        print(f"\ncorpus: {args.articles} articles, {n} chunks")
        print(f"raw encoder            {n / t_raw:8.1f} chunks/s")
        print(f"single process index   {n / t_single:8.1f} chunks/s   ratio to raw encoder {t_raw / t_single:.2f}")
        # Ray start-up cost on its own
        t = time.perf_counter()
        opts = distributed.RayOptions(num_cpus=2, embed_workers=1, threads_per_worker=2)
        distributed.ensure_ray(opts)
        t_init = time.perf_counter() - t
        print(f"ray.init (local, 2 CPUs): {t_init:.1f} s")
        t_ray1 = None
        for workers, threads in ((1, 2), (2, 1)):
            opts = distributed.RayOptions(num_cpus=2, embed_workers=workers, threads_per_worker=threads)
            t_ray, n2 = index_run(docs, tmp / f"ray{workers}", emb, ray=opts)
            t_ray1 = t_ray1 or t_ray
            assert n2 == n
            print(f"ray, {workers} actor(s) x {threads} thread(s) {n / t_ray:8.1f} chunks/s   "
                  f"ratio to single process {t_single / t_ray:.2f}   per worker {n / t_ray / workers:.1f} chunks/s")
        # the same with the corpus 4x larger, to separate fixed cost from per-chunk cost
        big = write_articles(tmp / "docs-big", args.articles * 4, 20, seed=1)
        t_single_b, nb = index_run(big, tmp / "single-b", emb)
        opts = distributed.RayOptions(num_cpus=2, embed_workers=1, threads_per_worker=2)
        t_ray_b, _ = index_run(big, tmp / "ray-b", emb, ray=opts)
        # t = fixed + chunks / rate, from the two corpus sizes
        rate = (nb - n) / max(t_ray_b - t_ray1, 1e-9)
        fixed = t_ray1 - n / rate
        rate_s = (nb - n) / max(t_single_b - t_single, 1e-9)
        print(f"4x corpus ({nb} chunks): single {nb / t_single_b:.1f} chunks/s, ray (1 actor x 2 threads) "
              f"{nb / t_ray_b:.1f} chunks/s, ratio {t_single_b / t_ray_b:.2f}")
        print(f"fit t = fixed + chunks/rate: Ray fixed cost {fixed:.1f} s per build (cluster connect, actor start, "
              f"model load in each actor), marginal rate {rate:.1f} chunks/s vs single-process marginal {rate_s:.1f}")
        distributed.shutdown()

        # 3. Milvus Lite vs FAISS at --vectors
        import faiss
        from rag.stores.milvus_store import MilvusStore, close_clients

        nv = args.vectors
        vecs = random_vectors(nv)
        qs, src = perturbed_queries(vecs, args.queries)
        flat = faiss.IndexFlatIP(vecs.shape[1])
        flat.add(vecs)
        st = MilvusStore.create(f"milvus://{tmp / 'bench.db'}", vecs.shape[1], tmp / "idx", nv, 10**9)
        t = time.perf_counter()
        st.add(range(nv), [f"c{i}" for i in range(nv)], [f"d{i // 10}" for i in range(nv)], vecs)
        t_ins = time.perf_counter() - t
        st.search(qs[:1], 10)  # load
        tm, tf, agree = [], [], 0
        for q in qs:
            t = time.perf_counter()
            _, rm = st.search(q[None, :], 10)
            tm.append(time.perf_counter() - t)
            t = time.perf_counter()
            _, rf = faiss_search(flat, q[None, :], 10)
            tf.append(time.perf_counter() - t)
            agree += len(set(rm[0]) & set(rf[0]))
        print(f"\nMilvus Lite at {nv:,} vectors: insert {nv / t_ins:,.0f} vectors/s ({t_ins:.1f} s)")
        print(f"query p50/p95: Milvus Lite {pct(tm, 50):.1f}/{pct(tm, 95):.1f} ms, FAISS flat {pct(tf, 50):.1f}/"
              f"{pct(tf, 95):.1f} ms, ratio Milvus/FAISS p50 {np.median(tm) / np.median(tf):.2f}, "
              f"top-10 agreement {agree / (10 * len(qs)):.3f}")
        st.drop()
        close_clients()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
