"""The fused reader end to end with a tiny random QA model: signals, offsets, scores."""
import pytest

import rag
from rag.readers.fusion import FUSED_FEATURES, FusedReader
from rag.readers.neural import NeuralReader
from conftest import sources


def test_fused_reader_signals_and_offsets(seed_index, embedder, tiny_qa_model):
    qa = rag.load(seed_index, embedder=embedder)
    reader = FusedReader(qa.index, embedder, neural=NeuralReader(tiny_qa_model))
    q = "Who is Turkey's foreign minister?"
    passages = qa.retrieve(q, k=3)
    rows = reader.signals(q, passages, embedder.encode([q])[0])
    assert rows
    for c, x, kind in rows:
        assert set(x) == set(FUSED_FEATURES)
        assert 0.0 <= x["neural_prob"] <= 1.0 and 0.0 < x["passage_rank"] <= 1.0
        assert c.passage.text[c.start - c.passage.start:c.end - c.passage.start] == c.text
    out = reader.read(q, passages, qvec=embedder.encode([q])[0])
    assert all(0.0 <= c.score <= 1.0 for c in out.candidates)
    assert [c.score for c in out.candidates] == sorted((c.score for c in out.candidates), reverse=True)


def test_fused_reader_through_qa(seed_index, embedder, tiny_qa_model):
    index = rag.load(seed_index, embedder=embedder).index
    qa = rag.load(seed_index, embedder=embedder,
                  reader=FusedReader(index, embedder, neural=NeuralReader(tiny_qa_model)))
    a = qa.ask("When did the deliveries of S-400 launchers to Turkey begin?", threshold=0.0)
    src = sources()
    assert a.reader == "fast" and a.text is not None  # FusedReader's default name: the MiniLM-based one
    assert src[a.doc_id][a.start:a.end] == a.text


def test_feature_weights_move_the_fused_score(seed_index, embedder, tiny_qa_model):
    qa = rag.load(seed_index, embedder=embedder)
    q = "Who is Turkey's foreign minister?"
    passages = qa.retrieve(q, k=3)
    base = FusedReader(qa.index, embedder, neural=NeuralReader(tiny_qa_model),
                       weights={k: 0.0 for k in FUSED_FEATURES})
    assert all(c.score == pytest.approx(0.5) for c in base.read(q, passages).candidates)
    typed = FusedReader(qa.index, embedder, neural=NeuralReader(tiny_qa_model),
                        weights={**{k: 0.0 for k in FUSED_FEATURES}, "type_match": 3.0})
    read = {(o.start, o.end): o for o in typed.read(q, passages).candidates}
    for c, x, _ in typed.signals(q, passages):
        typed_c = read[(c.start, c.end)]
        # sigmoid(3 * type_match): 0.95 for a typed match, 0.5 otherwise
        assert typed_c.score == pytest.approx(1 / (1 + 2.718281828 ** (-3.0 * x["type_match"])), rel=1e-4)
