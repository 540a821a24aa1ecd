"""Fit the fused reader's logistic weights, its calibration and its abstention threshold.

    python -m rag.train.fusion --squad ../shared/data/squad-pool.json.gz \
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
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..eval.datasets import load_squad, squad_subset, write_squad_docs
from ..eval.metrics import f1_score, max_over_golds
from ..readers.fusion import FUSED_FEATURES, FusedReader
from .neural import DEV_TITLES_FILE
from .tuning import add_min_noans_option, command_line, fit_settings, gold_dev, write_settings


def fused_rows(qa, questions: list[dict], *, k: int, label_f1: float = 0.6):
    """Feature rows and labels for every neural candidate the fused reader sees for ``questions``,
    read as answering reads them: the top ``k`` passages, widened into reading windows when the
    answerer has a reading context (``Answerer.reading``)."""
    reader = qa.answerer.reader
    X, y = [], []
    qs = [q["question"] for q in questions]
    qvecs = qa.retriever.encode(qs)
    hits = qa.retriever.search_many(qs, k, qa.mode, qvecs)
    for n, (q, passages) in enumerate(zip(questions, hits)):
        for c, x, _kind in reader.signals(q["question"], qa.answerer.reading(passages), qvecs[n]):
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
    ap.add_argument("--context", type=int, default=0, metavar="CHARS",
                    help="characters of neighbouring text read on each side of a passage, in fitting and "
                         "answering (rag.windows; default 0: the passages as retrieved)")
    ap.add_argument("--windows", default="merged", choices=("merged", "separate"),
                    help="with a context: how the widened passages are laid out (default merged)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--reader", choices=("fused", "fast"), default="fused",
                    help="which fused reader: fused (MPNet spans) or fast (MiniLM spans)")
    ap.add_argument("--out", default=None, help="default: rag/models/<reader>_settings.json")
    add_min_noans_option(ap)
    a = ap.parse_args(argv)
    a.out = a.out or f"rag/models/{a.reader}_settings.json"
    if a.context < 0:
        ap.error(f"--context {a.context}: give the characters of context as a whole number >= 0 (0: none)")

    def reading(qa):  # every QA below reads at the setting being fitted
        qa.k, qa.answerer.context, qa.answerer.windows = a.k, a.context, a.windows
        return qa

    import rag

    from ..embedding import Embedder

    t0 = time.time()
    rng = random.Random(a.seed)
    titles = sorted(json.loads(DEV_TITLES_FILE.read_text())["dev_titles"])
    emb = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        chosen = squad_subset(load_squad(Path(a.squad)), titles)
        write_squad_docs(chosen.paragraphs, Path(tmp) / "docs")
        questions = sorted((asdict(it) for it in chosen.items), key=lambda q: q["id"])
        rng.shuffle(questions)
        questions = questions[: a.questions]
        rag.build_index(Path(tmp) / "docs", Path(tmp) / "index", embedder=emb)
        qa = reading(rag.load(Path(tmp) / "index", embedder=emb, reader=a.reader))
        squad_rows = fused_rows(qa, questions, k=a.k)
    dev = gold_dev(a.gold)
    with tempfile.TemporaryDirectory() as tmp:
        rag.build_index(a.docs, tmp, embedder=emb)
        qa = reading(rag.load(tmp, embedder=emb, reader=a.reader))

        def load_with(weights):
            return reading(rag.load(tmp, embedder=emb, reader=FusedReader(
                qa.index, qa.embedder, weights=weights, neural=qa.answerer.reader.neural, name=a.reader)))

        settings = fit_settings(
            a.reader, FUSED_FEATURES, squad_rows, fused_rows(qa, dev, k=a.k), load_with, dev,
            fitted_on={"squad_dev_titles": titles, "squad_question_ids": sorted(q["id"] for q in questions)},
            min_noans=a.min_noans, command=command_line("rag.train.fusion", argv), t0=t0)
    if a.context:
        settings.update({"context": a.context, "windows": a.windows})
    write_settings(a.out, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
