"""Reader folders side by side on the held-out SQuAD dev articles, in one run (the figures the
model cards quote as "one run of scripts/compare_readers.py").

    .venv/bin/python scripts/compare_readers.py FOLDER [FOLDER ...] [--sample 300] [--near-misses 4]
        [--precisions bf16,fp32] [--pool ../shared/data/squad-pool.json.gz]

Each FOLDER is a reader (a LoRA adapter folder such as rag/models/reader_mpnet, or a full model
folder such as rag/models/reader). For each: the gold paragraph given, in each precision, and the
same questions read jointly with their article's K nearest misses (bf16, or the first precision),
via ``rag.train.neural.evaluate_model``; ``--sample`` questions drawn with seed 13 (0: all 3,751).
Prints HasAns F1 (best span) / best overall F1 / seconds per row, then all of it as JSON.
"""
from __future__ import annotations

import argparse
import json

from rag.eval.datasets import squad_articles
from rag.train.neural import evaluate_model, resolve_dev_titles


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+")
    p.add_argument("--pool", default="../shared/data/squad-pool.json.gz")
    p.add_argument("--sample", type=int, default=300, help="questions drawn with seed 13 (0: all)")
    p.add_argument("--near-misses", type=int, default=4, help="near misses per question (0: skip that row)")
    p.add_argument("--precisions", default="bf16,fp32")
    a = p.parse_args()
    precisions = [x.strip() for x in a.precisions.split(",") if x.strip()]
    titles = resolve_dev_titles(squad_articles(a.pool))
    rows = [(f"paragraph {q}", dict(precision=q)) for q in precisions]
    if a.near_misses:
        rows.append((f"+{a.near_misses} near misses {precisions[0]}",
                     dict(precision=precisions[0], distractors=a.near_misses)))
    out: dict[str, dict[str, list[float]]] = {}
    for folder in a.folders:
        for name, kw in rows:
            m = evaluate_model(folder, a.pool, titles=titles, sample=a.sample or None, seed=13, progress=False, **kw)
            got = [round(m["HasAns_f1_span"] / 100, 4), round(m["best_f1"] / 100, 4), m["seconds"]]
            out.setdefault(folder, {})[name] = got
            print(f"{folder}  {name}: HasAns F1 {got[0]:.4f}  best F1 {got[1]:.4f}  ({got[2]} s)", flush=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
