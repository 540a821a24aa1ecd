"""rag.train.low_overlap: the answerable training questions that least share their answer's words, trained twice."""
from __future__ import annotations

import pytest

from rag.errors import InputError
from rag.train import low_overlap as L
from test_negatives import train_with

DEAL = ("Turkey bought the S-400 from Russia in 2017. The United States has not imposed sanctions on Turkey "
        "out of fear of worsening relations with a major NATO ally. Charles W. Eliot signed nothing.")


def _ex(qid, question, answer, *, impossible=False):
    return {"id": qid, "title": "t", "question": question, "context": DEAL,
            "answers": [] if impossible else [(answer, DEAL.index(answer))], "impossible": impossible}


def test_the_answer_sentence_ends_at_a_full_stop_but_not_after_an_initial():
    assert L.answer_sentence(DEAL, DEAL.index("2017")) == "Turkey bought the S-400 from Russia in 2017."
    assert L.answer_sentence(DEAL, DEAL.index("fear")).strip().startswith("The United States has not")
    assert L.answer_sentence(DEAL, DEAL.index("Eliot")).strip() == "Charles W. Eliot signed nothing."
    assert L.answer_sentence("no full stop at all", 3) == "no full stop at all"


def test_overlap_is_the_share_of_the_question_words_the_sentence_has():
    s = "Turkey bought the S-400 from Russia in 2017."
    assert L.overlap("Turkey bought what from Russia?", s) == 1.0
    assert L.overlap("When did Turkey buy the S-400 from Russia?", s) == 0.8  # "buy" is not "bought"
    assert L.overlap("What is holding Washington back from penalising Ankara?", s) == 0.0
    assert 0 < L.overlap("When did Ankara buy the S-400?", s) < 1
    assert L.overlap("What is it?", s) == 1.0  # stopwords only: nothing to miss


def test_the_least_overlapping_answerable_questions_are_copied():
    exs = [_ex("lit", "In which year did Turkey buy the S-400 from Russia?", "2017"),
           _ex("para", "What is holding Washington back from penalising Ankara?", "fear of worsening relations"),
           _ex("half", "What did the United States not impose on Ankara?", "sanctions"),
           _ex("none", "What did Washington pay?", "", impossible=True)]
    one = L.low_overlap_copies(exs, 1 / 3, seed=1)
    assert [e["id"] for e in one] == ["low:para"]
    assert {k: v for k, v in one[0].items() if k != "id"} == {k: v for k, v in exs[1].items() if k != "id"}
    two = L.low_overlap_copies(exs, 2 / 3, seed=1)
    assert [e["id"] for e in two] == ["low:para", "low:half"]
    assert len(L.low_overlap_copies(exs, 1.0, seed=1)) == 3  # never the unanswerable one
    assert exs[1]["id"] == "para"  # the originals are left as they were


def test_figure_questions_are_never_copied():
    # The near misses the swapped negatives teach the reader to refuse: copying a "how many" question
    # whose words its sentence lacks would teach it to answer "100" for the pilots again.
    exs = [_ex("count", "How many pilots does Ankara have?", "2017"),
           _ex("measure", "How far did Ankara go?", "2017"),
           _ex("old", "How old was Washington's fear?", "fear of worsening relations"),
           _ex("much", "How much did Ankara pay?", "2017"),
           _ex("para", "What is holding Washington back from penalising Ankara?", "fear of worsening relations"),
           _ex("lit", "In which year did Turkey buy the S-400 from Russia?", "2017")]
    assert [e["id"] for e in L.low_overlap_copies(exs, 1.0, seed=1)] == ["low:para", "low:lit"]
    assert [e["id"] for e in L.low_overlap_copies(exs, 0.5, seed=1)] == ["low:para"]


def test_ties_are_broken_by_the_seed():
    exs = [_ex(f"q{i}", f"Who is Zed{i}?", "Charles W. Eliot") for i in range(20)]
    picks = {s: [e["id"] for e in L.low_overlap_copies(exs, 0.25, seed=s)] for s in (1, 2)}
    assert picks[1] == [e["id"] for e in L.low_overlap_copies(exs, 0.25, seed=1)]
    assert picks[1] != picks[2] and len(picks[1]) == 5


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, True, "0.25"])
def test_low_overlap_needs_a_share_above_0_and_at_most_1(bad):
    with pytest.raises(InputError, match="--low-overlap"):
        L.low_overlap_copies([], bad, seed=1)


def test_train_with_low_overlap_logs_the_copies_and_resume_must_repeat_them(tiny_qa_model, tmp_path):
    other = "The Eiffel Tower is in Paris. It was finished in 1889."
    data = {"version": "v2.0", "data": [
        {"title": "Deal", "paragraphs": [{"context": DEAL, "qas": [
            {"id": "d1", "question": "In which year did Turkey buy the S-400 from Russia?", "is_impossible": False,
             "answers": [{"text": "2017", "answer_start": DEAL.index("2017")}]},
            {"id": "d2", "question": "What is holding Washington back from penalising Ankara?",
             "is_impossible": False,
             "answers": [{"text": "fear", "answer_start": DEAL.index("fear")}]}]}]},
        {"title": "Tower", "paragraphs": [{"context": other, "qas": [
            {"id": "t1", "question": "When was the Eiffel Tower finished?", "is_impossible": False,
             "answers": [{"text": "1889", "answer_start": other.index("1889")}]}]}]},
    ]}
    start = train_with(tiny_qa_model, tmp_path, data, "Tower", {"low_overlap_fraction": 0.5}, "--low-overlap 0.5")
    # Deal is the training split: half of its two answerable questions, the paraphrase, is copied
    assert start["low_overlap_copies"] == 1 and start["low_overlap_fraction"] == 0.5
    assert start["train_questions"] == start["main_train_questions"] + 1 and start["train_unanswerable"] == 0
