"""Fit the feature reader's logistic weights, its calibration and its abstention threshold.

    python -m rag.readers.feature_training --squad ../shared/data/squad-pool.json.gz \
        --gold evals/gold.jsonl --docs seeds --out rag/models/features_settings.json

Training rows are the candidates the reader itself proposes, through the real pipeline (index,
hybrid retrieval of the top passages, index-time analysis), labelled 1 when the candidate's
token F1 with a gold answer is at least 0.6:
  * SQuAD train articles (never the held-out dev titles in rag/models/reader/dev_titles.json):
    each paragraph written as a document, questions asked with open retrieval over all of them;
  * the gold set's dev split (never the test split).
The fitted weights are a scikit-learn LogisticRegression's; then, on the gold dev split, the
answer scores are calibrated (Platt scaling) and the threshold is the SQuAD-2.0 best-F1 sweep.
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .features import FEATURES

DEV_TITLES = Path(__file__).resolve().parents[1] / "models" / "reader" / "dev_titles.json"


def load_squad(path: str) -> dict:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def write_squad_docs(data: dict, titles: list[str], folder: Path) -> list[dict]:
    """Write each paragraph as ``<title>/<i>.txt`` and return its questions (with doc ids)."""
    questions = []
    for art in data["data"]:
        if art["title"] not in titles:
            continue
        for i, para in enumerate(art["paragraphs"]):
            doc_id = f"{art['title']}/{i:03d}"
            path = folder / f"{doc_id}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"Paragraph {i} of {art['title'].replace('_', ' ')}\n{para['context']}\n", encoding="utf-8")
            for qa in para["qas"]:
                answers = [a["text"] for a in qa.get("answers", [])]
                questions.append({"id": qa["id"], "question": qa["question"], "answers": answers,
                                  "answerable": bool(answers) and not qa.get("is_impossible"), "doc_ids": [doc_id]})
    return questions


def candidate_rows(qa, questions: list[dict], *, k: int, label_f1: float = 0.6):
    """Feature rows and labels for every candidate the reader proposes for ``questions``."""
    from ..evaluation import f1_score, max_over_golds

    reader = qa.answerer.reader
    reader.top_n = 10_000
    X, y, groups = [], [], []
    qvecs = qa.retriever.encode([q["question"] for q in questions])
    hits = qa.retriever.search_many([q["question"] for q in questions], k, qa.mode, qvecs)
    for n, (q, passages) in enumerate(zip(questions, hits)):
        out = reader.read(q["question"], passages, qvec=qvecs[n])
        for c in out.candidates:
            f1 = max_over_golds(f1_score, c.text, q["answers"]) if q["answerable"] else 0.0
            X.append([c.features.get(name, 0.0) for name in FEATURES])
            y.append(1 if f1 >= label_f1 else 0)
            groups.append(n)
        if n % 100 == 0:
            print(f"  candidates: {n}/{len(questions)} questions, {len(y)} rows", file=sys.stderr, flush=True)
    return np.array(X, dtype=np.float64), np.array(y), np.array(groups)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad", required=True)
    ap.add_argument("--gold", default="evals/gold.jsonl")
    ap.add_argument("--docs", default="seeds")
    ap.add_argument("--articles", type=int, default=12, help="SQuAD train articles to use")
    ap.add_argument("--questions", type=int, default=1500, help="SQuAD questions to sample")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", default="rag/models/features_settings.json")
    a = ap.parse_args(argv)

    import rag

    from ..embedding import Embedder
    from .tuning import calibrate_on_dev, fit_weights

    t0 = time.time()
    rng = random.Random(a.seed)
    data = load_squad(a.squad)
    dev_titles = set(json.loads(DEV_TITLES.read_text())["dev_titles"]) if DEV_TITLES.is_file() else set()
    train_titles = sorted(art["title"] for art in data["data"] if art["title"] not in dev_titles)
    rng.shuffle(train_titles)
    titles = sorted(train_titles[: a.articles])
    emb = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        questions = write_squad_docs(data, titles, docs)
        rng.shuffle(questions)
        questions = questions[: a.questions]
        print(f"SQuAD: {len(titles)} articles, {len(questions)} questions", file=sys.stderr)
        rag.build_index(docs, Path(tmp) / "index", embedder=emb)
        qa = rag.load(Path(tmp) / "index", embedder=emb, reader="features")
        Xs, ys, _ = candidate_rows(qa, questions, k=a.k)
    gold = [json.loads(line) for line in open(a.gold, encoding="utf-8")]
    dev = [g for g in gold if g["split"] == "dev"]
    with tempfile.TemporaryDirectory() as tmp:
        rag.build_index(a.docs, tmp, embedder=emb)
        qa = rag.load(tmp, embedder=emb, reader="features")
        Xg, yg, _ = candidate_rows(qa, dev, k=a.k)
        weights = fit_weights(Xs, ys, Xg, yg, FEATURES)
        print("weights:", json.dumps(weights, indent=1), file=sys.stderr)
        qa = rag.load(tmp, embedder=emb, reader=FeatureReaderWith(qa, weights))
        calibrator, threshold, best = calibrate_on_dev(qa, dev)
    settings = {
        "reader": "features",
        "weights": weights,
        "calibration": calibrator.to_dict(),
        "threshold": threshold,
        "fitted_on": {"squad_titles": titles, "squad_questions": len(questions), "gold": "dev split",
                      "rows": int(len(ys) + len(yg)), "positives": int(ys.sum() + yg.sum()),
                      "label": "token F1 >= 0.6"},
        "dev_best_f1": best["best_f1"],
        "command": "python -m rag.readers.feature_training " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(time.time() - t0, 1),
    }
    Path(a.out).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {a.out}: threshold {threshold:.3f}, dev best F1 {best['best_f1']:.3f}", file=sys.stderr)
    return 0


def FeatureReaderWith(qa, weights):
    from .features import FeatureReader

    return FeatureReader(qa.index, qa.embedder, weights=weights)


if __name__ == "__main__":
    sys.exit(main())
