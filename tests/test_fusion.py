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


def test_fused_rows_read_the_windows_answering_reads():
    """The fused reader's weights are fitted on the candidates it sees when answering: with a
    reading context, those of the widened windows (rag.windows), not of the bare passages."""
    from rag.schema import Chunk, Passage
    from rag.answer import Answerer
    from rag.readers.base import SpanCandidate
    from rag.train.fusion import fused_rows
    from rag.windows import reading_windows

    source = "The deal was signed in Moscow. It covers four batteries. The first arrived in July."
    cut = [0, source.index("It covers"), source.index("The first"), len(source)]

    class Index:
        chunks = [Chunk(chunk_id=f"d:{n}", doc_id="d", n=n, start=a, end=b - 1 if b < len(source) else b,
                        text=source[a:b - 1 if b < len(source) else b], title="d", tokens=5)
                  for n, (a, b) in enumerate(zip(cut, cut[1:]))]

        def source(self, doc_id):
            return source

    index = Index()
    middle = index.chunks[1]
    retrieved = [Passage(doc_id="d", title="d", text=middle.text, start=middle.start, end=middle.end, score=0.9,
                         chunk_id=middle.chunk_id)]
    seen = []

    class Reader:
        def signals(self, question, passages, qvec=None):
            seen.append(list(passages))
            p = passages[0]
            a = source.index("Moscow")
            if not p.start <= a < p.end:
                return [(SpanCandidate("d", p.start, p.start + 3, p.text[:3], 0.5, p), {n: 0.0 for n in FUSED_FEATURES},
                         "other")]
            return [(SpanCandidate("d", a, a + 6, "Moscow", 0.9, p), {n: 1.0 for n in FUSED_FEATURES}, "place")]

    class Retriever:
        def encode(self, qs):
            return [None] * len(qs)

        def search_many(self, qs, k, mode, qvecs):
            return [retrieved for _ in qs]

    Retriever.index = index

    class QA:
        retriever, mode = Retriever(), "hybrid"
        answerer = Answerer(retriever, Reader())

    q = [{"question": "Where was the deal signed?", "answers": ["Moscow"], "answerable": True}]
    X, y = fused_rows(QA(), q, k=1)
    assert seen[-1] == retrieved and list(y) == [0]  # the bare passage does not hold the answer
    QA.answerer.context = 40
    X, y = fused_rows(QA(), q, k=1)
    assert seen[-1] == reading_windows(retrieved, index, 40, "merged") and "Moscow" in seen[-1][0].text
    assert list(y) == [1] and X.shape == (1, len(FUSED_FEATURES))
