"""Fit the fused reader's logistic weights, its calibration and its abstention threshold.

    python -m rag.readers.fusion_training --squad ../shared/data/squad-pool.json.gz \
        --gold evals/gold.jsonl --docs seeds --reader fused --out rag/models/fused_settings.json

``--reader fused`` fits the MPNet-based fused reader, ``--reader fast`` the MiniLM-based one
(``--out rag/models/fast_settings.json``).

Rows are the neural candidates the fused reader sees through the real pipeline (index, hybrid
retrieval, index-time analysis), labelled 1 when their token F1 with a gold answer is >= 0.6:
  * questions of the held-out SQuAD dev articles (rag/models/reader/dev_titles.json: the neural
    reader never trained on them), open retrieval over all their paragraphs; the ids used are
    written to the settings so SQuAD-dev evaluations can leave them out;
  * the gold set's dev split (never the test split).
Then, on the gold dev split, the fused score is calibrated (Platt) and the threshold is the
SQuAD-2.0 best-F1 sweep.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .feature_training import DEV_TITLES, load_squad, write_squad_docs
from .fusion import FUSED_FEATURES


def fused_rows(qa, questions: list[dict], *, k: int, label_f1: float = 0.6):
    from ..evaluation import f1_score, max_over_golds

    reader = qa.answerer.reader
    X, y = [], []
    qs = [q["question"] for q in questions]
    qvecs = qa.retriever.encode(qs)
    hits = qa.retriever.search_many(qs, k, qa.mode, qvecs)
    for n, (q, passages) in enumerate(zip(questions, hits)):
        for c, x, _kind in reader.signals(q["question"], passages, qvecs[n]):
            f1 = max_over_golds(f1_score, c.text, q["answers"]) if q["answerable"] else 0.0
            X.append([x[name] for name in FUSED_FEATURES])
            y.append(1 if f1 >= label_f1 else 0)
        if n % 50 == 0:
            print(f"  fused rows: {n}/{len(questions)} questions, {len(y)} rows", file=sys.stderr, flush=True)
    return np.array(X, dtype=np.float64), np.array(y)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad", required=True)
    ap.add_argument("--gold", default="evals/gold.jsonl")
    ap.add_argument("--docs", default="seeds")
    ap.add_argument("--questions", type=int, default=600, help="SQuAD dev-article questions to fit on")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--reader", choices=("fused", "fast"), default="fused",
                    help="which fused reader: fused (MPNet spans) or fast (MiniLM spans)")
    ap.add_argument("--out", default=None, help="default: rag/models/<reader>_settings.json")
    a = ap.parse_args(argv)
    a.out = a.out or f"rag/models/{a.reader}_settings.json"

    import rag

    from ..embedding import Embedder
    from .fusion import FusedReader
    from .tuning import calibrate_on_dev, fit_weights

    t0 = time.time()
    rng = random.Random(a.seed)
    data = load_squad(a.squad)
    titles = sorted(json.loads(DEV_TITLES.read_text())["dev_titles"])
    emb = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        questions = write_squad_docs(data, titles, Path(tmp) / "docs")
        questions.sort(key=lambda q: q["id"])
        rng.shuffle(questions)
        questions = questions[: a.questions]
        rag.build_index(Path(tmp) / "docs", Path(tmp) / "index", embedder=emb)
        qa = rag.load(Path(tmp) / "index", embedder=emb, reader=a.reader)
        Xs, ys = fused_rows(qa, questions, k=a.k)
    gold = [json.loads(line) for line in open(a.gold, encoding="utf-8")]
    dev = [g for g in gold if g["split"] == "dev"]
    with tempfile.TemporaryDirectory() as tmp:
        rag.build_index(a.docs, tmp, embedder=emb)
        qa = rag.load(tmp, embedder=emb, reader=a.reader)
        Xg, yg = fused_rows(qa, dev, k=a.k)
        weights = fit_weights(Xs, ys, Xg, yg, FUSED_FEATURES)
        print("weights:", json.dumps(weights, indent=1), file=sys.stderr)
        qa = rag.load(tmp, embedder=emb, reader=FusedReader(qa.index, qa.embedder, weights=weights,
                                                            neural=qa.answerer.reader.neural, name=a.reader))
        calibrator, threshold, best = calibrate_on_dev(qa, dev)
    settings = {
        "reader": a.reader,
        "weights": weights,
        "calibration": calibrator.to_dict(),
        "threshold": threshold,
        "fitted_on": {"squad_dev_titles": titles, "squad_question_ids": sorted(q["id"] for q in questions),
                      "gold": "dev split", "rows": int(len(ys) + len(yg)), "positives": int(ys.sum() + yg.sum()),
                      "label": "token F1 >= 0.6"},
        "dev_best_f1": best["best_f1"],
        "command": "python -m rag.readers.fusion_training " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(time.time() - t0, 1),
    }
    Path(a.out).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {a.out}: threshold {threshold:.3f}, gold dev best F1 {best['best_f1']:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
