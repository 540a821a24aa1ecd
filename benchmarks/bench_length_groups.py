"""The reader's forward in length groups against one padded batch, over what the gold dev questions read.

    python benchmarks/bench_length_groups.py [--reader mpnet] [--precision fp32] [--questions 20]

The windows each question reads (retrieved and widened as ``ask`` does, at k 5 with 300, 450 and
600 characters of context, merged layout) are collected first; then the reader's ``forward`` runs
over the first ``--questions`` of them, timed in one run: one padded batch
(``FORWARD_CALL_TOKENS`` set past any cut) and the length groups ``NeuralReader.forward`` uses.
Also one forward call's fixed cost in padded token positions (a 1 x 24 input against 4 x 384).
Prints seconds and ratios to today's reading (k 5, 300 characters, one batch); timings on a shared
2-core VM are noisy, so ratios matter more than absolutes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reader", default="mpnet")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8", "auto"))
    ap.add_argument("--questions", type=int, default=20)
    a = ap.parse_args()
    os.environ["RAG_READER_PRECISION"] = a.precision
    import torch

    import rag
    from rag.embedding import Embedder
    from rag.readers import neural
    from rag.train.tuning import gold_dev

    print(f"machine: {machine()}")
    dev = gold_dev(ROOT / "evals" / "gold.jsonl")
    emb = Embedder()
    tmp = tempfile.mkdtemp(prefix="rag-bench-groups-")
    rag.build_index(ROOT / "seeds", tmp, embedder=emb)
    qa = rag.load(tmp, embedder=emb, reader=a.reader)
    r = qa.answerer.reader
    r.warm_up()
    real_forward = r.forward

    def collect(k: int, context: int) -> list:
        rec = []
        r.forward = lambda question, passages: rec.append((question, list(passages)))  # records, reads nothing
        qa.answerer.context, qa.answerer.windows, qa.k = context, "merged", k
        for g in dev:
            qa.ask(g["question"])
        r.forward = real_forward
        return rec[: a.questions]

    sets = {c: collect(5, c) for c in (300, 450, 600)}
    model = r._model

    def t_forward(n: int, length: int, rep: int) -> float:
        ids = torch.full((n, length), 100)
        ids[:, 0] = 0
        mask = torch.ones((n, length), dtype=torch.long)
        ts = []
        with torch.inference_mode():
            for _ in range(rep):
                t = time.perf_counter()
                model(input_ids=ids, attention_mask=mask)
                ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    t_small, t_big = t_forward(1, 24, 5), t_forward(4, 384, 3)
    per_tok = t_big / (4 * 384)
    print(f"reader {r.name} ({r.precision_used}); forward 1x24 {t_small * 1e3:.1f} ms, 4x384 {t_big * 1e3:.1f} ms: "
          f"a call's fixed cost ~ {(t_small - 24 * per_tok) / per_tok:.0f} token positions "
          f"(FORWARD_CALL_TOKENS = {neural.FORWARD_CALL_TOKENS})")

    def run(rec: list, call_tokens: int) -> float:
        saved = neural.FORWARD_CALL_TOKENS
        neural.FORWARD_CALL_TOKENS = call_tokens
        try:
            t = time.perf_counter()
            for q, ps in rec:
                r.forward(q, ps)
            return time.perf_counter() - t
        finally:
            neural.FORWARD_CALL_TOKENS = saved

    rows = []
    for context, label, ct in ((300, "one batch", 10**9), (300, "groups", neural.FORWARD_CALL_TOKENS),
                               (450, "groups", neural.FORWARD_CALL_TOKENS), (600, "groups", neural.FORWARD_CALL_TOKENS),
                               (450, "one batch", 10**9)):
        rows.append((context, label, run(sets[context], ct)))
    base = rows[0][2]
    for context, label, t in rows:
        n = len(sets[context])
        print(f"k 5, context {context}, {label:9s}: {t:6.1f} s for {n} questions ({t / n * 1e3:5.0f} ms each), "
              f"ratio to k 5 / 300 / one batch {t / base:.3f}")


if __name__ == "__main__":
    main()
