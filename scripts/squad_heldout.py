"""Write the held-out SQuAD dev articles the readers never trained or were fitted on.

    python scripts/squad_heldout.py ../shared/data/squad-pool.json.gz squad-dev-heldout.json

Keeps the articles of rag/models/reader/dev_titles.json (the neural reader's fixed dev split)
and drops the questions the fused readers were fitted on (fused_settings.json and
fast_settings.json, "fitted_on.squad_question_ids"): what `rag eval --squad` reports as "held-out SQuAD dev
articles" in evals/README.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag.eval.datasets import read_squad_json
from rag.train.neural import DEV_TITLES_FILE

MODELS = Path(__file__).resolve().parents[1] / "rag" / "models"
FITTED = [MODELS / "fused_settings.json", MODELS / "fast_settings.json"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pool", help="SQuAD 2.0 JSON(.gz): the pool the reader was trained on")
    ap.add_argument("out", help="where to write the held-out SQuAD 2.0 JSON")
    args = ap.parse_args()
    titles = set(json.loads(DEV_TITLES_FILE.read_text(encoding="utf-8"))["dev_titles"])
    fitted = set()
    for f in FITTED:
        if f.exists():
            fitted |= set(json.loads(f.read_text(encoding="utf-8")).get("fitted_on", {}).get("squad_question_ids", []))
    data = read_squad_json(Path(args.pool))
    arts, n_q, n_imp = [], 0, 0
    for art in data["data"]:
        if art["title"] not in titles:
            continue
        paras = []
        for para in art["paragraphs"]:
            qas = [q for q in para["qas"] if q["id"] not in fitted]
            n_q += len(qas)
            n_imp += sum(1 for q in qas if q.get("is_impossible"))
            paras.append({**para, "qas": qas})
        arts.append({**art, "paragraphs": paras})
    Path(args.out).write_text(json.dumps({"version": data.get("version", "v2.0"), "data": arts}), encoding="utf-8")
    print(f"{args.out}: {len(arts)} articles, {n_q} questions ({n_imp} unanswerable)")


if __name__ == "__main__":
    main()
