"""Hand-written paraphrases of SQuAD training questions, trained beside the originals.

The gold set's paraphrased questions avoid the wording of the sentence that answers them ("Which
Kremlin leader agreed to hurry the handover ...?" over "Putin said ... accelerate the delivery"):
their median share of words found in that sentence is 0.14, against 0.57 for SQuAD's questions.
SQuAD has few such questions, and a reader trained on it with many unanswerable ones learns that a
question whose words the paragraph lacks has no answer there. Training the few low-overlap SQuAD
questions twice (``rag.train.low_overlap``) did not teach it otherwise.

``paraphrases.jsonl`` (next to this module) holds rewritten questions for answerable questions of
the pool's training split (``../shared/data/squad-pool.json.gz`` minus the fixed dev titles of
``rag/models/reader/dev_titles.json``), one JSON object per line: ``{"id": <the SQuAD question's
id>, "question": <the rewrite>}``. Each asks for the same answer span of the same paragraph in other
words: synonyms, another construction, things named by a description ("the Polish composer" for
Chopin). They were written for this project (2026-12-07) from SQuAD questions with a high word
overlap with their answer's sentence, figure questions ("how many", ``asks_figure``) left out, and
are derived from SQuAD (CC BY-SA 4.0), so they carry its licence. ``paraphrase_examples`` turns
them into training examples: each original's paragraph and answers with the rewritten question
(ids ``para:<id>``), so a run trains both wordings.

How the file was made: ``python -m rag.train.paraphrases candidates ../shared/data/squad-pool.json.gz
--dev-titles rag/models/reader/dev_titles.json --out DIR`` writes the questions to rewrite (``rewrite_candidates``: seed 2026, 3,203 questions over
988 paragraphs) in eight parts; each part was rewritten by following ``paraphrases_brief.md`` (next to
this module) to the letter, then the rewrites were gathered in the pool's order and the two that
contained their answer dropped. ``paraphrases2.jsonl`` is a second set of 3,202, made the same way
from other questions (``candidates ... --seed 2027 --skip rag/train/paraphrases.jsonl``; one dropped
whose SQuAD answer does not answer its question); a run may name both (``--paraphrases`` twice).
Trained beside the first (stage 15) it tied on gold dev and lost on the rest of dev, so the shipped
recipe uses the first set only.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError

PARAPHRASES_FILE = Path(__file__).with_name("paraphrases.jsonl")


def read_paraphrases(path: str | os.PathLike) -> list[dict[str, str]]:
    """The ``{"id", "question"}`` lines of a paraphrase file, checked: JSON objects with both fields as
    non-empty strings, ids unique."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--paraphrases {str(path)!r}: no such file; the shipped one is {PARAPHRASES_FILE}")
    rows, seen = [], set()
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{p}:{n}: not JSON ({e.msg}); each line is {{\"id\": ..., \"question\": ...}}") from None
        if not (isinstance(row, dict) and isinstance(row.get("id"), str) and row["id"]
                and isinstance(row.get("question"), str) and row["question"].strip()):
            raise InputError(f"{p}:{n}: each line needs a non-empty string \"id\" (a SQuAD question id) and "
                             "\"question\" (its rewrite)")
        if row["id"] in seen:
            raise InputError(f"{p}:{n}: the id {row['id']!r} is there twice; keep one rewrite per question")
        seen.add(row["id"])
        rows.append({"id": row["id"], "question": row["question"].strip()})
    if not rows:
        raise InputError(f"--paraphrases {p}: the file holds no paraphrases")
    return rows


def paraphrase_examples(train: Sequence[dict[str, Any]], path: str | os.PathLike, *,
                        held_out: Sequence[dict[str, Any]] = (), prefix: str = "para") -> list[dict[str, Any]]:
    """The paraphrases of ``path`` as training examples: for each, the training example with its id
    (``rag.train.neural.flatten``'s shape) with the question replaced and the id ``<prefix>:<id>``
    (``para2`` for a run's second file, ...: ids stay unique across files).

    Refused with ``InputError``: a rewrite of a question of ``held_out`` (the dev articles: dev figures
    would be trained on), of an unanswerable question, or of an id ``train`` lacks (a file written for
    other data)."""
    rows = read_paraphrases(path)
    by_id = {e["id"]: e for e in train}
    dev_ids = {e["id"] for e in held_out}
    on_dev = [r["id"] for r in rows if r["id"] in dev_ids]
    if on_dev:
        raise InputError(f"--paraphrases {path}: {len(on_dev)} rewrite(s) are of held-out dev questions (e.g. "
                         f"{on_dev[0]}), so dev figures would be trained on; remove them from the file")
    missing = [r["id"] for r in rows if r["id"] not in by_id]
    if missing:
        raise InputError(f"--paraphrases {path}: {len(missing)} id(s) are not questions of the training data "
                         f"(e.g. {missing[0]}); the file was written for ../shared/data/squad-pool.json.gz, "
                         "so train on it (without --limit)")
    out = []
    for r in rows:
        e = by_id[r["id"]]
        if e["impossible"] or not e["answers"]:
            raise InputError(f"--paraphrases {path}: {r['id']} is an unanswerable question; rewrite only "
                             "answerable ones")
        out.append({**e, "id": f"{prefix}:{r['id']}", "question": r["question"]})
    return out


def rewrite_candidates(articles: Sequence[dict[str, Any]], dev_titles: Sequence[str], *, seed: int = 2026,
                       min_overlap: float = 0.4, per_paragraph: int = 5, limit: int = 3200,
                       skip: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The paragraphs whose questions the shipped file rewrites: of the training articles (not in
    ``dev_titles``), every paragraph's answerable questions, figure questions left out
    (``asks_figure``), that share at least ``min_overlap`` of their words with their first answer's
    sentence (``low_overlap.overlap``), at most ``per_paragraph`` each; the paragraphs shuffled with
    ``seed`` and taken until ``limit`` questions are reached; questions whose id is in ``skip``
    (rewritten already) are left out. Each: ``{"title", "context", "questions": [{"id", "question",
    "answer"}]}``."""
    from .low_overlap import answer_sentence, overlap
    from .negatives import asks_figure

    dev, done = set(dev_titles), set(skip)
    paragraphs = []
    for art in articles:
        if art["title"] in dev:
            continue
        for para in art["paragraphs"]:
            qs = []
            for qa in para["qas"]:
                if (qa.get("is_impossible") or not qa.get("answers") or asks_figure(qa["question"])
                        or qa["id"] in done):
                    continue
                first = qa["answers"][0]
                if overlap(qa["question"], answer_sentence(para["context"], first["answer_start"])) >= min_overlap:
                    qs.append({"id": qa["id"], "question": qa["question"], "answer": first["text"]})
            if qs:
                paragraphs.append({"title": art["title"], "context": para["context"], "questions": qs[:per_paragraph]})
    random.Random(seed).shuffle(paragraphs)
    out, n = [], 0
    for p in paragraphs:
        if n >= limit:
            break
        out.append(p)
        n += len(p["questions"])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rag.train.paraphrases",
        description="Write the training questions the shipped paraphrase file rewrites, in parts for "
                    "rewriting by the brief rag/train/paraphrases_brief.md.")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("candidates", help="the questions to rewrite, as PARTS JSON-lines files in OUT")
    c.add_argument("data", help="the pool, ../shared/data/squad-pool.json.gz")
    c.add_argument("--dev-titles", required=True, metavar="FILE",
                   help="the held-out dev articles, never rewritten: rag/models/reader/dev_titles.json")
    c.add_argument("--out", required=True, help="folder for in_0.jsonl ... (created)")
    c.add_argument("--parts", type=int, default=8)
    c.add_argument("--seed", type=int, default=2026)
    c.add_argument("--limit", type=int, default=3200)
    c.add_argument("--skip", action="append", default=[], metavar="FILE",
                   help="leave out the questions this paraphrase file rewrites already (repeatable)")
    args = parser.parse_args(argv)
    from ..eval.datasets import squad_articles

    try:
        listed = json.loads(Path(args.dev_titles).read_text(encoding="utf-8"))
        dev_titles = listed["dev_titles"] if isinstance(listed, dict) else listed
    except (OSError, ValueError, KeyError) as e:
        print(f"error: --dev-titles {args.dev_titles}: not a dev-titles file ({e}); pass "
              "rag/models/reader/dev_titles.json", file=sys.stderr)
        return 2
    try:
        articles = squad_articles(args.data)
    except (InputError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        skip = [r["id"] for f in args.skip for r in read_paraphrases(f)]
    except InputError as e:
        print(f"error: --skip: {e}", file=sys.stderr)
        return 2
    picked = rewrite_candidates(articles, dev_titles, seed=args.seed, limit=args.limit, skip=skip)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts: list[list[dict[str, Any]]] = [[] for _ in range(max(1, args.parts))]
    for n, p in enumerate(picked):
        parts[n % len(parts)].append(p)
    for n, part in enumerate(parts):
        (out / f"in_{n}.jsonl").write_text(
            "".join(json.dumps({"context": p["context"], "questions": p["questions"]}) + "\n" for p in part),
            encoding="utf-8")
    print(f"{sum(len(p['questions']) for p in picked)} questions over {len(picked)} paragraphs in "
          f"{len(parts)} parts under {out}; rewrite each by {Path(__file__).with_name('paraphrases_brief.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
