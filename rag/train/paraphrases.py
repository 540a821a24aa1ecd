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
"""
from __future__ import annotations

import hashlib
import json
import os
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


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of the file's bytes: what a resumed run checks it still trains the same rewrites."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def paraphrase_examples(train: Sequence[dict[str, Any]], path: str | os.PathLike, *,
                        held_out: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The paraphrases of ``path`` as training examples: for each, the training example with its id
    (``rag.train.neural.flatten``'s shape) with the question replaced and the id ``para:<id>``.

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
        out.append({**e, "id": f"para:{r['id']}", "question": r["question"]})
    return out
