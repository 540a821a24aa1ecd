"""Validation of the hand-made gold question-answer set in evals/gold.jsonl."""
from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rag.documents import load_documents  # noqa: E402

GOLD = ROOT / "evals" / "gold.jsonl"
SEEDS = ROOT / "seeds"

REQUIRED = {"id", "question", "answers", "doc_ids", "answerable", "type", "split", "paraphrase"}
OPTIONAL = {"unanswerable_kind", "chrome_term", "note"}
TYPES = {"person", "org", "place", "date", "number", "money", "quantity", "description", "event",
         "title", "nationality", "other"}
KINDS = {"chrome", "near_miss", "off_topic"}


@pytest.fixture(scope="module")
def gold() -> list[dict]:
    rows = []
    with GOLD.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:  # pragma: no cover - failure path
                pytest.fail(f"gold.jsonl line {n} is not valid JSON: {e}")
    return rows


@pytest.fixture(scope="module")
def corpus():
    docs, _warnings = load_documents(SEEDS)
    bodies = {d.doc_id: [d.source[s:e] for s, e in d.segments] for d in docs}
    raws = {d.doc_id: d.source for d in docs}
    return bodies, raws


def _answerable(rows):
    return [r for r in rows if r["answerable"]]


def _unanswerable(rows):
    return [r for r in rows if not r["answerable"]]


def test_keys_and_value_types(gold):
    for r in gold:
        keys = set(r)
        assert REQUIRED <= keys, (r.get("id"), REQUIRED - keys)
        assert keys <= REQUIRED | OPTIONAL, (r["id"], keys - REQUIRED - OPTIONAL)
        assert isinstance(r["id"], str) and r["id"], r
        assert isinstance(r["question"], str) and r["question"].strip(), r["id"]
        assert r["question"] == r["question"].strip(), r["id"]
        assert isinstance(r["answers"], list) and all(isinstance(a, str) and a for a in r["answers"]), r["id"]
        assert len(set(r["answers"])) == len(r["answers"]), f"{r['id']}: duplicate answers"
        assert isinstance(r["doc_ids"], list) and all(isinstance(d, str) for d in r["doc_ids"]), r["id"]
        assert len(set(r["doc_ids"])) == len(r["doc_ids"]), f"{r['id']}: duplicate doc_ids"
        assert isinstance(r["answerable"], bool), r["id"]
        assert isinstance(r["paraphrase"], bool), r["id"]
        assert r["type"] in TYPES, (r["id"], r["type"])
        assert r["split"] in {"dev", "test"}, (r["id"], r["split"])
        if "note" in r:
            assert isinstance(r["note"], str), r["id"]


def test_answerable_and_unanswerable_fields_consistent(gold):
    for r in gold:
        if r["answerable"]:
            assert r["answers"], f"{r['id']}: answerable pair without answers"
            assert r["doc_ids"], f"{r['id']}: answerable pair without doc_ids"
            assert "unanswerable_kind" not in r, r["id"]
            assert "chrome_term" not in r, r["id"]
        else:
            assert r["answers"] == [], f"{r['id']}: unanswerable pair with answers"
            assert r.get("unanswerable_kind") in KINDS, (r["id"], r.get("unanswerable_kind"))
            if r["unanswerable_kind"] == "chrome":
                assert isinstance(r.get("chrome_term"), str) and r["chrome_term"], r["id"]
            else:
                assert "chrome_term" not in r, r["id"]
            if r["unanswerable_kind"] == "near_miss":
                assert r["doc_ids"], f"{r['id']}: a near miss should name the related articles"


def test_ids_and_questions_unique(gold):
    ids = Counter(r["id"] for r in gold)
    assert not [i for i, c in ids.items() if c > 1], "duplicate ids"
    norm = Counter(" ".join(r["question"].lower().split()) for r in gold)
    assert not [q for q, c in norm.items() if c > 1], [q for q, c in norm.items() if c > 1]


def test_size_and_composition(gold):
    n = len(gold)
    assert n >= 100
    unans = _unanswerable(gold)
    assert len(unans) >= 25
    kinds = Counter(r["unanswerable_kind"] for r in unans)
    assert kinds["chrome"] >= 8, kinds
    assert kinds["near_miss"] >= 8, kinds
    assert sum(r["paraphrase"] for r in gold) * 3 >= n, "fewer than a third are paraphrases"


def test_splits_balanced_and_stratified(gold):
    n = len(gold)
    splits = Counter(r["split"] for r in gold)
    for s in ("dev", "test"):
        assert 0.4 <= splits[s] / n <= 0.6, splits
    by_type = defaultdict(set)
    counts = Counter(r["type"] for r in gold)
    for r in gold:
        by_type[r["type"]].add(r["split"])
    for t, c in counts.items():
        if c >= 2:
            assert by_type[t] == {"dev", "test"}, f"type {t} ({c} items) not in both splits"


def test_doc_ids_exist(gold, corpus):
    bodies, _ = corpus
    for r in gold:
        for d in r["doc_ids"]:
            assert d in bodies, f"{r['id']}: unknown doc_id {d}"


def test_every_article_covered(gold, corpus):
    bodies, _ = corpus
    per_doc = Counter(d for r in _answerable(gold) for d in r["doc_ids"])
    for d in bodies:
        assert per_doc[d] >= 12, f"article {d} has only {per_doc[d]} answerable questions (need 12)"


def test_answers_occur_in_cleaned_bodies(gold, corpus):
    bodies, _ = corpus
    for r in _answerable(gold):
        segs = [seg for d in r["doc_ids"] for seg in bodies[d]]
        for a in r["answers"]:
            assert any(a in seg for seg in segs), f"{r['id']}: answer {a!r} not in the body of {r['doc_ids']}"
        # every listed article must state the answer (in one of its surface forms)
        for d in r["doc_ids"]:
            assert any(a in seg for a in r["answers"] for seg in bodies[d]), (
                f"{r['id']}: doc {d} states none of {r['answers']}")


def test_conflicting_deal_value_question(gold):
    hits = [r for r in gold if r["answerable"] and r["type"] == "money"
            and "$2.5 billion" in r["answers"] and any(a.endswith("$2 billion") for a in r["answers"])]
    assert hits, "no money question carrying both reported deal values"
    assert any({"000_58e3d6b70d3dc322", "001_1040b1609e3dded8"} <= set(r["doc_ids"]) for r in hits)


def test_chrome_unanswerables_are_chrome_only(gold, corpus):
    bodies, raws = corpus
    all_bodies = "\n".join(seg for segs in bodies.values() for seg in segs).lower()
    for r in gold:
        if r.get("unanswerable_kind") != "chrome":
            continue
        term = r["chrome_term"]
        assert term.lower() in r["question"].lower(), f"{r['id']}: chrome_term {term!r} not in question"
        assert any(term in raw for raw in raws.values()), f"{r['id']}: {term!r} not in any raw seed file"
        assert term.lower() not in all_bodies, f"{r['id']}: {term!r} occurs in a cleaned body"
