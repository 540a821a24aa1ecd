"""NeuralReader: offsets, scores and windowing with a tiny random model; the shipped model on one
known question."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from rag.readers.base import Reader  # noqa: E402
from rag.readers import neural  # noqa: E402
from rag.readers.neural import NeuralReader, default_model_path, length_groups, trim_span  # noqa: E402
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


def test_length_groups_cut_where_padding_costs_more_than_a_call():
    assert length_groups([300, 300, 300], call_tokens=64) == [([0, 1, 2], 300)]  # nothing to spare
    # one batch: 2 x 384 + 64 = 832 positions; two: 384 + 100 + 2 x 64 = 612
    assert length_groups([100, 384], call_tokens=64) == [([1], 384), ([0], 100)]
    assert length_groups([100, 384], call_tokens=1000) == [([0, 1], 384)]
    lengths = [120, 384, 370, 95, 384, 210, 101, 360]
    groups = length_groups(lengths, call_tokens=64)
    assert sorted(r for rows, _ in groups for r in rows) == list(range(len(lengths)))  # each window once
    assert all(width == max(lengths[r] for r in rows) for rows, width in groups)
    cost = sum(len(rows) * width + 64 for rows, width in groups)
    assert cost < len(lengths) * 384 + 64 and len(groups) == 3  # {384, 384, 370, 360}, {210}, {120, 101, 95}
    assert length_groups([]) == []


def test_windows_read_in_length_groups_score_as_one_batch(tiny_qa_model, monkeypatch):
    """Short and long passages together: read in several batches (the default) or in one, the
    spans, their scores and the no-answer score are the same."""
    long_words = " ".join(f"word{k % 97} is number {k}." for k in range(60))
    src = "Header\n" + long_words
    passages = [_passage(SRC_A, SRC_A[13:], "a"), _passage(src, long_words, "long"), _passage(SRC_B, SRC_B[9:], "b")]
    reader = NeuralReader(tiny_qa_model, max_length=128, stride=32, top_n=50)
    reader.warm_up()
    seen = []
    model = reader._model
    real_forward = model.forward
    monkeypatch.setattr(model, "forward", lambda **kw: seen.append(kw["input_ids"].shape) or real_forward(**kw))
    grouped = reader.read("When was the Eiffel Tower completed?", passages)
    assert len(seen) >= 2 and min(n for _, n in seen) < max(n for _, n in seen), seen  # shorter batches were cut
    seen.clear()
    monkeypatch.setattr(neural, "FORWARD_CALL_TOKENS", 10**6)
    single = reader.read("When was the Eiffel Tower completed?", passages)
    assert len(seen) == 1
    _check(grouped, passages)
    assert [(c.doc_id, c.start, c.end) for c in grouped.candidates] == [(c.doc_id, c.start, c.end) for c in single.candidates]
    assert [c.score for c in grouped.candidates] == pytest.approx([c.score for c in single.candidates], abs=1e-5)
    assert grouped.no_answer == pytest.approx(single.no_answer, abs=1e-5)


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
