"""Warm `ask` and `retrieve` latency on the seed index, as ratios to the floor measured in the same run.

    python benchmarks/bench_ask.py [--index DIR] [--reader features] [--repeat 3]

The floor is what no answerer can avoid: one question encode plus one exact FAISS search of the
same index. For a neural or fused reader there is a second floor, "floor + reader forward": the
same plus one batched forward pass of the neural model (tokenisation included) over the passages
the ask reads (retrieved before the timer starts; for a reader tuned to read context, the reading
windows they widen into, `rag.windows`). Each question is timed with the models already loaded (warm), every question of the
gold set in turn, `--repeat` rounds; medians and p95 are over all timings.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=None, help="index folder (default: build one from seeds/ in a temp folder)")
    ap.add_argument("--reader", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="only the first N gold questions (slow readers)")
    ap.add_argument("-k", type=int, default=None, help="passages read (default: the reader's tuned k)")
    ap.add_argument("--context", type=int, default=None, help="characters read around each passage (default: the reader's)")
    ap.add_argument("--windows", choices=("merged", "separate"), default=None,
                    help="layout of the widened passages (default: the reader's)")
    a = ap.parse_args(argv)

    import faiss
    import rag
    from rag.stores.faiss_store import faiss_search
    from rag.windows import reading_windows

    tmp = None
    index = a.index
    if index is None:
        tmp = tempfile.TemporaryDirectory()
        index = tmp.name
        rag.build_index(ROOT / "seeds", index)
    qa = rag.load(index, reader=a.reader, k=a.k, context=a.context, windows=a.windows)
    questions = [json.loads(line)["question"] for line in open(ROOT / "evals" / "gold.jsonl", encoding="utf-8")]
    questions = questions[: a.limit] if a.limit else questions
    flat = faiss.IndexFlatIP(qa.index.dimension)
    flat.add(qa.index.store.vectors(range(len(qa.index.chunks))))
    # Warm up every model on the path.
    qa.ask(questions[0])
    qa.retrieve(questions[0])
    reader = qa.answerer.reader
    neural = reader if hasattr(reader, "forward") else getattr(reader, "neural", None)
    k = qa.read_k  # the reader's tuned k, what ask reads
    context = qa.answerer.context  # characters read around each passage (rag.windows), as ask reads them
    windows = qa.answerer.windows
    passages = {q: reading_windows(qa.retrieve(q, k=k), qa.index, context, windows) for q in questions}
    floor, floor_r, retrieve, ask = [], [], [], []
    for _ in range(a.repeat):
        for q in questions:
            t = time.perf_counter()
            v = qa.embedder.encode([q])
            faiss_search(flat, v, k)  # one thread for one query, as rag.retrieval does
            floor.append(time.perf_counter() - t)
            if neural is not None:
                t = time.perf_counter()
                v = qa.embedder.encode([q])
                faiss_search(flat, v, k)
                neural.forward(q, passages[q])
                floor_r.append(time.perf_counter() - t)
            t = time.perf_counter()
            qa.retrieve(q, k=k)
            retrieve.append(time.perf_counter() - t)
            t = time.perf_counter()
            qa.ask(q)
            ask.append(time.perf_counter() - t)
    f50 = statistics.median(floor)
    rows = [("floor (encode + exact search)", floor), (f"retrieve (hybrid, k={k})", retrieve),
            (f"ask ({qa.answerer.reader.name} reader)", ask)]
    if floor_r:
        rows.insert(1, ("floor + reader forward", floor_r))
    prec = getattr(neural, "precision_used", None)
    print(f"{len(questions)} questions x {a.repeat} rounds, warm, seed index ({len(qa.index.chunks)} chunks), "
          f"reader {qa.answerer.reader.name}" + (f" ({prec})" if prec else "") + f", k={k}" + (f", context {context} chars ({windows} windows)" if context else ""))
    print(f"{'':34s} {'p50 ms':>8s} {'p95 ms':>8s} {'p50 / floor p50':>16s}")
    for name, xs in rows:
        print(f"{name:34s} {pct(xs, 50):8.1f} {pct(xs, 95):8.1f} {statistics.median(xs) / f50:16.2f}")
    if floor_r:
        print(f"ask p50 / (floor + reader forward) p50: {statistics.median(ask) / statistics.median(floor_r):.2f}")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
