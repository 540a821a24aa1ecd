"""NeuralReader: offsets, scores and windowing with a tiny random model; the shipped model on one
known question."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from rag.readers.base import Reader  # noqa: E402
from rag.readers.neural import NeuralReader, default_model_path, trim_span  # noqa: E402
from rag.schema import Passage  # noqa: E402

SHIPPED = default_model_path()


def _passage(source: str, sub: str, doc_id: str, score: float = 0.5) -> Passage:
    s = source.index(sub)
    return Passage(doc_id=doc_id, title=doc_id, text=sub, start=s, end=s + len(sub), score=score,
                   chunk_id=f"{doc_id}:0")


SRC_A = ("Intro line.\n\nThe Eiffel Tower, in Paris, was completed in 1889. It is 330 metres tall, "
         "and (at the time) it was the tallest structure in the world.")
SRC_B = "# Curie\n\nMarie Curie was born in Warsaw in 1867; she won two Nobel Prizes (1903, 1911)."


def _check(out, passages):
    by_id = {(p.doc_id, p.start): p for p in passages}
    keys = set()
    for c in out.candidates:
        p = c.passage
        assert (p.doc_id, p.start) in by_id
        assert p.start <= c.start < c.end <= p.end
        assert p.text[c.start - p.start: c.end - p.start] == c.text
        assert c.text == c.text.strip() and c.text
        assert 0.0 <= c.score <= 1.0
        for k in ("start_logit", "end_logit", "span_prob", "window_null_logit"):
            assert k in c.features
        key = (c.doc_id, c.start, c.end)
        assert key not in keys
        keys.add(key)
    scores = [c.score for c in out.candidates]
    assert scores == sorted(scores, reverse=True)
    assert 0.0 <= out.no_answer <= 1.0
    assert sum(scores) + out.no_answer <= 1.0 + 1e-4


def test_read_two_passages_offsets_exact(tiny_qa_model):
    reader = NeuralReader(tiny_qa_model, top_n=50)
    assert isinstance(reader, Reader) and reader.name == "custom"
    assert reader._model is None  # lazy
    passages = [_passage(SRC_A, SRC_A[13:], "a"), _passage(SRC_B, SRC_B[9:], "b")]
    out = reader.read("When was the Eiffel Tower completed?", passages)
    assert out.candidates
    _check(out, passages)
    assert {c.doc_id for c in out.candidates} == {"a", "b"}  # both passages can contribute
    # the question's tokens are never proposed
    assert all("completed?" not in c.text for c in out.candidates)


def test_long_passage_is_windowed(tiny_qa_model):
    words = " ".join(f"word{k % 97} is number {k}." for k in range(300))
    src = "Header\n" + words
    p = _passage(src, words, "long")
    reader = NeuralReader(tiny_qa_model, max_length=64, stride=16, top_n=2000)
    out = reader.read("Which number is word5?", [p])
    _check(out, [p])
    windows = {int(c.features["window"]) for c in out.candidates}
    assert len(windows) > 5
    assert max(c.start - p.start for c in out.candidates) > len(words) // 2  # the tail is read


def test_empty_inputs(tiny_qa_model):
    reader = NeuralReader(tiny_qa_model)
    assert reader.read("Who?", []).candidates == []
    blank = Passage(doc_id="x", title="x", text="   ", start=0, end=3, score=0.0)
    out = reader.read("Who?", [blank])
    assert out.candidates == [] and out.no_answer == 1.0


@pytest.mark.parametrize("text,expected", [
    (" Paris, ", "Paris"),
    ("the U.S.", "the U.S."),
    ("in 1889.", "in 1889"),
    ("(at the time)", "(at the time)"),
    ("1911)", "1911"),
    ('"Hamlet', "Hamlet"),
    ("...", ""),
])
def test_trim_span(text, expected):
    a, b = trim_span(text, 0, len(text))
    assert text[a:b] == expected


@pytest.mark.skipif(not (SHIPPED / "model.safetensors").exists(), reason="reader model not shipped yet")
def test_shipped_model_answers():
    reader = NeuralReader()
    src = "Notes.\nDmitry Shugayev heads Russia's Federal Service for Military and Technical Cooperation.\n"
    text = "Dmitry Shugayev heads Russia's Federal Service for Military and Technical Cooperation."
    p = _passage(src, text, "doc")
    out = reader.read("Who heads Russia's Federal Service for Military and Technical Cooperation?", [p])
    _check(out, [p])
    assert out.candidates and "Shugayev" in out.candidates[0].text
    assert out.candidates[0].score > out.no_answer
