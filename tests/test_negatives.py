"""rag.train.negatives: unanswerable training questions made from answerable ones."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rag.errors import InputError
from rag.train import negatives as N
from rag.train.neural import flatten
from test_train import CTX2, CTX3, squad_fixture

FLEET = ("Turkey has sent pilots to the United States for training. Turkey is expected to buy 100 jets in "
         "total, and it has also ordered 4 radars and several tankers.")
MISSILE = "The missile can fly 400 km at an altitude of 30 km, and it weighs 2 tonnes."


def _ex(qid, question, context, answer):
    return {"id": qid, "title": "t", "question": question, "context": context,
            "answers": [(answer, context.index(answer))], "impossible": False}


def unrelated(words):
    """Every word orthogonal to every other: no swap is refused as a synonym."""
    return np.eye(len(words), max(len(words), 1))


def test_context_negatives_pair_questions_with_near_miss_paragraphs_of_their_article():
    exs = flatten(squad_fixture()["data"])
    neg = N.context_negatives(exs, 1.0, seed=13)
    by_id = {e["id"]: e for e in exs}
    # only Marie_Curie has a second paragraph; every answerable question of it gets one negative
    assert sorted(e["id"] for e in neg) == ["neg:c1", "neg:c2", "neg:c3", "neg:d1"]
    for e in neg:
        src = by_id[e["id"][4:]]
        assert e["impossible"] and e["answers"] == [] and e["question"] == src["question"]
        assert e["title"] == src["title"] and e["context"] != src["context"]
        assert not any(t.lower() in e["context"].lower() for t, _ in src["answers"])
    paired = {e["id"]: e["context"] for e in neg}
    assert paired["neg:c1"] == CTX3 and paired["neg:d1"] == CTX2
    # an answer found in the other paragraph too: no negative for that question
    exs2 = flatten(squad_fixture()["data"])
    for e in exs2:
        if e["context"] == CTX3:
            e["context"] = CTX3 + " Warsaw is far away."
    assert "neg:c1" not in {e["id"] for e in N.context_negatives(exs2, 1.0, seed=13)}
    half = N.context_negatives(exs, 0.5, seed=13)
    assert len(half) <= 4 and half == N.context_negatives(exs, 0.5, seed=13)  # seeded
    with pytest.raises(InputError, match="above 0"):
        N.context_negatives(exs, 0.0, seed=13)


def test_a_counted_noun_is_swapped_only_for_one_the_paragraph_names_and_does_not_count():
    q = _ex("a", "How many jets will Turkey buy?", FLEET, "100")
    out = N.swap_negatives([q], 3, seed=1, embed=unrelated)
    # "radars" (4 of them) and "tankers" (several) are counted there, and "jets" is the asked noun
    assert [(s["id"], s["question"]) for s in out] == [("swap:a:0", "How many pilots will Turkey buy?")]
    s = out[0]
    assert s["impossible"] and s["answers"] == [] and s["context"] == FLEET and s["title"] == "t"
    # a near synonym of the asked noun would still be answered by the same figure: not a negative
    assert N.swap_negatives([q], 3, seed=1, embed=lambda words: np.ones((len(words), 4))) == []
    # the noun of the answer itself is no swap either
    assert N.swap_negatives([_ex("b", "How many jets will Turkey buy?", FLEET, "100 jets")], 3, seed=1,
                            embed=unrelated)[0]["question"] == "How many pilots will Turkey buy?"
    # vague counted nouns ("how many times") and questions without "how many" give nothing
    assert N.swap_negatives([_ex("c", "How many times did Turkey buy jets?", FLEET, "100"),
                             _ex("d", "What will Turkey buy?", FLEET, "100 jets")], 3, seed=1, embed=unrelated) == []


def test_a_measure_is_swapped_for_ones_the_paragraph_has_no_word_for():
    far = _ex("m", "How far can the missile fly?", MISSILE, "400 km")
    out = N.swap_negatives([far], 6, seed=1, embed=unrelated)
    # km (far), altitude (high) and weighs (heavy) are in the paragraph: fast, deep and old are not
    assert sorted(s["question"] for s in out) == ["How deep can the missile fly?", "How fast can the missile fly?",
                                                   "How old can the missile fly?"]
    assert len({s["id"] for s in out}) == 3
    assert len(N.swap_negatives([far], 1, seed=1, embed=unrelated)) == 1
    # "tall" is never swapped to its synonym "high", even where the paragraph has no word for height
    tall = N.swap_negatives([_ex("t", "How tall is the tower?", "The tower was finished in 1889.", "1889")], 6,
                            seed=1, embed=unrelated)
    assert "How high is the tower?" not in {s["question"] for s in tall} and tall
    # seeded, and unanswerable questions are never the source of a swap
    assert out == N.swap_negatives([far], 6, seed=1, embed=unrelated)
    assert N.swap_negatives([{**far, "answers": [], "impossible": True}], 3, seed=1, embed=unrelated) == []


@pytest.mark.parametrize("bad", [0, -1, 0.5, True])
def test_swap_negatives_needs_a_whole_number_of_swaps(bad):
    with pytest.raises(InputError, match="--swap-negatives"):
        N.swap_negatives([], bad, seed=1)


def train_with(tiny_qa_model, tmp_path, data, dev_title, flags, refused):
    """One training step on ``data`` (SQuAD JSON) with ``flags``; then a resume without them refused
    (InputError matching ``refused``) and one with them continuing. The run's start record."""
    from rag.train import neural as T

    f = tmp_path / "data.json"
    f.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "run"
    kw = dict(encoder=str(tiny_qa_model), max_length=48, stride=16, batch_size=2, lr=1e-3, checkpoint_every=1,
              progress=False, device="cpu", evaluate=False, dev_titles=[dev_title])
    assert T.train_reader(f, out, max_steps=1, **flags, **kw)["finished"]
    start = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()
             if '"event": "start"' in x][-1]
    with pytest.raises(InputError, match=refused):
        T.train_reader(f, out, max_steps=2, resume=True, **kw)
    assert T.train_reader(f, out, max_steps=2, resume=True, **flags, **kw)["step"] == 2
    return start


def test_train_with_swap_negatives_logs_them_and_resume_must_repeat_them(tiny_qa_model, tmp_path):
    data = {"version": "v2.0", "data": [
        {"title": "Fleet", "paragraphs": [{"context": FLEET, "qas": [
            {"id": "f1", "question": "How many jets will Turkey buy?", "is_impossible": False,
             "answers": [{"text": "100", "answer_start": FLEET.index("100")}]}]}]},
        {"title": "Missile", "paragraphs": [{"context": MISSILE, "qas": [
            {"id": "m1", "question": "How far can the missile fly?", "is_impossible": False,
             "answers": [{"text": "400 km", "answer_start": MISSILE.index("400 km")}]}]}]},
    ]}
    start = train_with(tiny_qa_model, tmp_path, data, "Missile", {"swap_negatives": 2}, "--swap-negatives 2")
    # Fleet is the training split: one "how many" question, one free noun (pilots)
    assert start["swap_negatives"] == 1 and start["swap_negatives_per_question"] == 2
    assert start["train_questions"] == start["main_train_questions"] + 1 and start["train_unanswerable"] == 1
