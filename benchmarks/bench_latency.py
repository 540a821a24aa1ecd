"""Warm latency (p50/p95) of retrieve and ask against corpus size, as ratios to the floor, plus RSS.

    python benchmarks/bench_latency.py [--sizes seed,10000,100000,1000000] [--plot benchmarks/latency_memory.png]

Corpora: the seed index; 10k chunks of real text (seed sentences reshuffled into articles,
really encoded by build_index, analyze=False); 100k and 1M chunks of random unit vectors with
real-sentence texts and a real BM25 index, written with rag.index.versions helpers (no encoding). Each
size loads in its own fresh process (so RSS is that size's alone) with the FAISS kind
faiss_spec(n) picks (exact below ANN_THRESHOLD, HNSW above) and the mmap rules of rag.stores.faiss_store.

The floor, per question: one question encode + one exact FAISS search (IndexFlatIP) of the same
size, k=5. Every figure is warm (models loaded, a few warm-up questions first) and measured in
this run; ratios are p50 / floor p50. Questions: evals/gold.jsonl.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, ROOT, machine, pct, rss_mb, synthetic_index, write_articles  # noqa: E402


def corpus(size: str, log, flat: bool = False) -> Path:
    import rag

    if size == "seed":
        index = CACHE / "index-seed"
        rag.build_index(ROOT / "seeds", index)
        return index
    n = int(size)
    if n <= 20_000:  # real text, really encoded (about 10 chunks per 40-sentence article)
        docs = CACHE / f"docs-{n}"
        index = CACHE / f"index-real-{n}"
        if not (docs / "DONE").is_file():
            write_articles(docs, n_articles=max(1, n // 10), sentences_per_article=40, seed=n)
            (docs / "DONE").write_text("")
        t = time.perf_counter()
        info = rag.build_index(docs, index, analyze=False)
        log(f"  ({info.num_chunks:,}-chunk real-text index ready in {time.perf_counter() - t:.0f} s, "
            f"{info.encoded_chunks:,} embedded)")
        return index
    return synthetic_index(n, CACHE / f"index-synth-{n}{'-flat' if flat else ''}", log=log,
                           spec={"type": "flat"} if flat else None)


def measure_one(size: str, n_questions: int, n_ask: int, flat: bool = False) -> dict:
    """Runs in a fresh process: load the index of ``size``, time floor / retrieve / ask, read RSS."""
    import faiss

    import rag
    from rag.embedding import Embedder

    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    index_dir = corpus(size, log, flat)
    questions = [json.loads(line)["question"] for line in open(ROOT / "evals" / "gold.jsonl", encoding="utf-8")]
    questions = (questions * (1 + n_questions // len(questions)))[:n_questions]
    emb = Embedder()
    emb.encode(["warm up"])
    rss_base = rss_mb()
    t = time.perf_counter()
    qa = rag.load(index_dir, embedder=emb)
    load_s = time.perf_counter() - t
    rss_loaded = rss_mb()
    n = qa.index.vectors.ntotal
    spec = qa.index.manifest.get("faiss", {})
    if spec.get("type", "flat") == "flat":
        exact = qa.index.vectors
    else:  # the floor is an exact search of the same vectors
        exact = faiss.IndexFlatIP(qa.index.dimension)
        for b in range(0, n, 100_000):
            exact.add(qa.index.vectors.reconstruct_n(b, min(100_000, n - b)))
    from rag.stores.faiss_store import faiss_search  # the fastest way to run one exact query here

    for q in questions[:5]:  # warm up every path (page cache, BM25, reader)
        faiss_search(exact, emb.encode([q]), 5)
        qa.retrieve(q, k=5)
        qa.retrieve(q, k=5, mode="dense")
    qa.ask(questions[0])
    floor, dense, hybrid, ask = [], [], [], []
    for i, q in enumerate(questions):
        t = time.perf_counter()
        faiss_search(exact, emb.encode([q]), 5)
        floor.append(time.perf_counter() - t)
        t = time.perf_counter()
        qa.retrieve(q, k=5, mode="dense")
        dense.append(time.perf_counter() - t)
        t = time.perf_counter()
        qa.retrieve(q, k=5)
        hybrid.append(time.perf_counter() - t)
        if i < n_ask:
            t = time.perf_counter()
            qa.ask(q)
            ask.append(time.perf_counter() - t)
    if exact is not qa.index.vectors:
        del exact
    rss_after = rss_mb()
    f50 = statistics.median(floor)
    row = lambda xs: {"p50_ms": pct(xs, 50), "p95_ms": pct(xs, 95), "ratio": statistics.median(xs) / f50}  # noqa: E731
    return {"size": size, "chunks": n, "faiss": spec, "load_s": load_s, "questions": len(questions),
            "ask_questions": len(ask), "reader": qa.answerer.reader.name,
            "floor": row(floor), "retrieve_dense": row(dense), "retrieve_hybrid": row(hybrid), "ask": row(ask),
            "rss_base_mb": rss_base, "rss_loaded_mb": rss_loaded, "rss_after_mb": rss_after}


def _size_axes(ax, ylabel: str, title: str) -> None:
    """Log-scaled corpus size on x, grid and legend: the look both panels share."""
    ax.set_xscale("log")
    ax.set_xlabel("chunks in the index (log)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["chunks"] for r in results]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for key, label, style in [("floor", "floor: encode + exact search", "k--"),
                              ("retrieve_dense", "retrieve, dense", "o-"),
                              ("retrieve_hybrid", "retrieve, hybrid (default)", "s-"),
                              ("ask", "ask (reader: someone else's)", "^-")]:
        ax1.plot(xs, [r[key]["p50_ms"] for r in results], style, label=f"{label} p50")
        if key != "floor":
            ax1.fill_between(xs, [r[key]["p50_ms"] for r in results], [r[key]["p95_ms"] for r in results],
                             alpha=0.12)
    for r in results:
        kind = r["faiss"].get("type", "flat")
        ax1.annotate(kind, (r["chunks"], r["retrieve_dense"]["p50_ms"]), textcoords="offset points",
                     xytext=(0, -14), ha="center", fontsize=8, color="tab:blue")
    ax1.set_yscale("log")
    _size_axes(ax1, "warm latency per question, ms (log)", "Latency p50 (band: up to p95)")
    base = [r["rss_base_mb"]["VmRSS"] for r in results]
    total = [r["rss_after_mb"]["VmRSS"] for r in results]
    anon = [r["rss_after_mb"]["RssAnon"] for r in results]
    filem = [r["rss_after_mb"]["RssFile"] for r in results]
    ax2.plot(xs, total, "D-", color="tab:red", label="total RSS after the queries")
    ax2.plot(xs, anon, "o-", label="  of which anonymous (heap: BM25, chunk cache, graph)")
    ax2.plot(xs, filem, "s-", label="  of which file-backed (mmapped vectors, libraries)")
    ax2.plot(xs, base, "k--", label="total RSS before loading the index (model loaded)")
    _size_axes(ax2, "MB", "Process memory (RSS) by size")
    fig.suptitle("rag: warm latency and memory against corpus size  [" + machine() + "]", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="seed,10000,100000,1000000")
    ap.add_argument("--questions", type=int, default=100, help="questions timed per size (gold set, cycled)")
    ap.add_argument("--ask", type=int, default=25, help="of which also asked (ask is slower)")
    ap.add_argument("--plot", default=str(ROOT / "benchmarks" / "latency_memory.png"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "latency.json"))
    ap.add_argument("--flat-sizes", default="", help="synthetic sizes to build exact (flat) whatever "
                    "faiss_spec says (e.g. when an HNSW build of that size does not fit the time)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(measure_one(a.one, a.questions, a.ask, a.one in a.flat_sizes.split(","))))
        return 0
    print(machine())
    results = []
    for size in a.sizes.split(","):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, __file__, "--one", size, "--questions", str(a.questions),
                            "--ask", str(a.ask), "--flat-sizes", a.flat_sizes], stdout=subprocess.PIPE, text=True)
        if p.returncode:
            print(f"size {size}: failed (exit {p.returncode})")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"size {size}: {r['chunks']:,} chunks done in {time.perf_counter() - t:.0f} s", flush=True)
    print("\nwarm latency, ms (p50 / p95), ratio = p50 / floor p50; floor = 1 question encode + 1 exact search")
    print(f"{'corpus':>10s} {'chunks':>9s} {'faiss':>6s} {'load s':>7s} {'floor':>13s} {'dense':>19s} "
          f"{'hybrid':>19s} {'ask':>21s} {'RSS anon/file MB':>17s}")
    for r in results:
        f = lambda k: f"{r[k]['p50_ms']:6.1f}/{r[k]['p95_ms']:6.1f} x{r[k]['ratio']:.2f}"  # noqa: E731
        print(f"{r['size']:>10s} {r['chunks']:9,d} {r['faiss'].get('type', 'flat'):>6s} {r['load_s']:7.2f} "
              f"{r['floor']['p50_ms']:6.1f}/{r['floor']['p95_ms']:6.1f} {f('retrieve_dense'):>19s} "
              f"{f('retrieve_hybrid'):>19s} {f('ask'):>21s} "
              f"{r['rss_after_mb']['RssAnon']:7.0f}/{r['rss_after_mb']['RssFile']:<7.0f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    if results:
        plot(results, Path(a.plot))
        print(f"plot: {a.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
