"""Fit the feature reader's logistic weights, its calibration and its abstention threshold.

    python -m rag.train.features --squad ../shared/data/squad-pool.json.gz \
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
import random
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..eval.datasets import load_squad, read_squad_json, squad_subset, write_squad_docs
from ..eval.metrics import f1_score, max_over_golds
from ..readers.features import FEATURES, FeatureReader
from .neural import DEV_TITLES_FILE
from .tuning import add_min_noans_option, command_line, fit_settings, gold_dev, write_settings


def candidate_rows(qa, questions: list[dict], *, k: int, label_f1: float = 0.6):
    """Feature rows and labels for every candidate the reader proposes for ``questions``."""
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
    add_min_noans_option(ap)
    a = ap.parse_args(argv)

    import json

    import rag

    from ..embedding import Embedder

    t0 = time.time()
    rng = random.Random(a.seed)
    data = read_squad_json(Path(a.squad))
    squad = load_squad(Path(a.squad), data)
    dev_titles = set(json.loads(DEV_TITLES_FILE.read_text())["dev_titles"]) if DEV_TITLES_FILE.is_file() else set()
    train_titles = sorted(art["title"] for art in data["data"] if art["title"] not in dev_titles)
    rng.shuffle(train_titles)
    titles = sorted(train_titles[: a.articles])
    emb = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        chosen = squad_subset(squad, titles)
        write_squad_docs(chosen.paragraphs, docs)
        questions = [asdict(it) for it in chosen.items]
        rng.shuffle(questions)
        questions = questions[: a.questions]
        print(f"SQuAD: {len(titles)} articles, {len(questions)} questions", file=sys.stderr)
        rag.build_index(docs, Path(tmp) / "index", embedder=emb)
        qa = rag.load(Path(tmp) / "index", embedder=emb, reader="features")
        squad_rows = candidate_rows(qa, questions, k=a.k)[:2]
    dev = gold_dev(a.gold)
    with tempfile.TemporaryDirectory() as tmp:
        rag.build_index(a.docs, tmp, embedder=emb)
        qa = rag.load(tmp, embedder=emb, reader="features")
        settings = fit_settings(
            "features", FEATURES, squad_rows, candidate_rows(qa, dev, k=a.k)[:2],
            lambda weights: rag.load(tmp, embedder=emb, reader=feature_reader_with(qa, weights)), dev,
            fitted_on={"squad_titles": titles, "squad_questions": len(questions)},
            min_noans=a.min_noans, command=command_line("rag.train.features", argv), t0=t0)
    write_settings(a.out, settings)
    return 0


def feature_reader_with(qa, weights: dict[str, float]) -> FeatureReader:
    """A feature reader over ``qa``'s index with these weights instead of the shipped ones."""
    return FeatureReader(qa.index, qa.embedder, weights=weights)


if __name__ == "__main__":
    sys.exit(main())
