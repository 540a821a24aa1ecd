"""rag.windows: retrieved passages widened into reading windows, and the spans' citations."""
from __future__ import annotations

from rag.readers.base import ReaderOutput, SpanCandidate
from rag.schema import Chunk, Passage
from rag.windows import cite, reading_windows, widen

# An article whose indexed body has a stripped gap (chrome) in the middle: the chunks cover
# [0, chrome) and [after, end), never the chrome between them.
BODY_A = ("The deal was signed in Moscow. It covers four batteries. The first arrived in July. "
          "Officials in Ankara called it a done deal. ")
CHROME = "More from the site: CV90 orders rise. "
BODY_B = "The second set is under talks. Its price was not given."
SOURCE = BODY_A + CHROME + BODY_B
OTHER = "Greece operates the S-300. It bought it from Cyprus in May 1998."


def _chunk(doc, n, start, end, source):
    return Chunk(chunk_id=f"{doc}:{n}", doc_id=doc, n=n, start=start, end=end, text=source[start:end], title=doc,
                 tokens=len(source[start:end].split()))


def _cut(text, sentence):
    a = text.index(sentence)
    return a, a + len(sentence)


class FakeIndex:
    def __init__(self):
        s = SOURCE
        a0, a1, a2 = 0, s.index("It covers"), s.index("Officials")
        b0 = s.index("The second")
        self.texts = {"d": s, "o": OTHER}
        self.chunks = [_chunk("d", 0, a0, a1 - 1, s), _chunk("d", 1, a1, a2 - 1, s),
                       _chunk("d", 2, a2, len(BODY_A) - 1, s), _chunk("d", 3, b0, len(s), s),
                       _chunk("o", 0, 0, len(OTHER), OTHER)]

    def source(self, doc_id):
        return self.texts[doc_id]


def _passage(index, row, score):
    c = index.chunks[row]
    return Passage(doc_id=c.doc_id, title=c.title, text=c.text, start=c.start, end=c.end, score=score,
                   chunk_id=c.chunk_id)


def test_a_passage_widens_into_its_neighbours_in_whole_words_and_never_across_a_gap():
    idx = FakeIndex()
    middle = _passage(idx, 1, 0.9)
    a, b = widen(middle, idx, 12)
    assert SOURCE[a:b].startswith("in Moscow.") and SOURCE[a:b].endswith("Officials")  # 12 chars, whole words
    assert a < middle.start and b > middle.end
    # the last chunk before the chrome widens up to it, not into it; the chunk after it not back over it
    a, b = widen(_passage(idx, 2, 0.5), idx, 500)
    assert SOURCE[a:b].startswith("The deal") and SOURCE[a:b].endswith("done deal.") and "CV90" not in SOURCE[a:b]
    a, b = widen(_passage(idx, 3, 0.5), idx, 500)
    assert SOURCE[a:b] == BODY_B


def test_windows_merge_per_article_in_the_order_of_their_best_passage():
    idx = FakeIndex()
    ps = [_passage(idx, 4, 0.9), _passage(idx, 2, 0.8), _passage(idx, 0, 0.7), _passage(idx, 3, 0.6)]
    assert reading_windows(ps, idx, 0) == ps
    ws = reading_windows(ps, idx, 40)
    # chunks 0 and 2 of "d", each widened by 40, overlap over chunk 1: one window, at chunk 2's rank
    assert [(w.doc_id, w.chunk_id, w.score) for w in ws] == [("o", "o:0", 0.9), ("d", "d:2", 0.8), ("d", "d:3", 0.6)]
    for w in ws:
        assert idx.source(w.doc_id)[w.start:w.end] == w.text
    assert ws[1].text == BODY_A.strip() and ws[2].text == BODY_B  # no text read twice, no chrome read


def test_separate_windows_read_each_passage_in_its_own_window_centred_on_it():
    import pytest

    import rag

    idx = FakeIndex()
    ps = [_passage(idx, 4, 0.9), _passage(idx, 2, 0.8), _passage(idx, 0, 0.7), _passage(idx, 3, 0.6)]
    assert reading_windows(ps, idx, 0, "separate") == ps
    ws = reading_windows(ps, idx, 40, "separate")
    assert [(w.doc_id, w.chunk_id, w.score) for w in ws] == [(p.doc_id, p.chunk_id, p.score) for p in ps]
    for w, p in zip(ws, ps):
        assert idx.source(w.doc_id)[w.start:w.end] == w.text and (w.start, w.end) == widen(p, idx, 40)
        assert w.start <= p.start and p.end <= w.end and "CV90" not in w.text
    # chunks 0 and 2 widened by 40 both reach into chunk 1: that text is read twice, unlike merged
    overlap = set(range(ws[1].start, ws[1].end)) & set(range(ws[2].start, ws[2].end))
    assert overlap and all(idx.chunks[1].start <= i < idx.chunks[1].end for i in overlap)
    assert sum(len(w.text) for w in ws) > sum(len(w.text) for w in reading_windows(ps, idx, 40))
    with pytest.raises(rag.InputError, match="windows must be one of merged, separate"):
        reading_windows(ps, idx, 40, "joined")


def test_a_span_read_in_two_separate_windows_is_one_candidate_with_both_readings(tiny_qa_model):
    """Text in two overlapping windows is read twice; the neural reader keys spans by their article
    offsets, so a span found in both is one candidate whose probability adds both readings."""
    from rag.readers.neural import NeuralReader

    idx = FakeIndex()
    ps = [_passage(idx, 0, 0.9), _passage(idx, 2, 0.8)]
    reader = NeuralReader(tiny_qa_model, precision="fp32")
    q = "How many batteries does it cover?"
    sep = reader.read(q, reading_windows(ps, idx, 60, "separate"))
    keys = [(c.doc_id, c.start, c.end) for c in sep.candidates]
    assert len(keys) == len(set(keys))
    for c in sep.candidates:
        assert idx.source(c.doc_id)[c.start:c.end] == c.text
    shared = idx.chunks[1]  # read by both windows: its spans come out once each
    assert any(shared.start <= c.start and c.end <= shared.end for c in sep.candidates)


def test_spans_cite_the_retrieved_passage_or_the_chunk_that_holds_them():
    idx = FakeIndex()
    retrieved = [_passage(idx, 2, 0.8)]
    window = reading_windows(retrieved, idx, 200)[0]

    def span(text, start=None):
        a = SOURCE.index(text) if start is None else start
        return SpanCandidate(doc_id="d", start=a, end=a + len(text), text=text, score=0.5, passage=window)

    inside, margin = span("a done deal"), span("four batteries")
    across = span("Moscow. It covers")
    got = cite([inside, margin, across], retrieved, idx)
    assert got[0].passage == retrieved[0]
    assert got[1].passage.chunk_id == "d:1" and got[1].passage.score == window.score
    assert got[1].passage.text == idx.chunks[1].text
    assert got[2].passage == window  # across two chunks: the window it was read in


def test_the_answerer_reads_windows_and_cites_the_chunk(monkeypatch):
    from rag.answer import Answerer

    idx = FakeIndex()
    seen = []

    class Reader:
        name, uses_vectors = "toy", False

        def read(self, question, passages, qvec=None):
            seen.append(list(passages))
            a = SOURCE.index("four batteries")
            p = next((p for p in passages if p.start <= a < p.end), None)
            return ReaderOutput([SpanCandidate("d", a, a + 14, "four batteries", 0.9, p)] if p else [], 0.1)

    class Retriever:
        index = idx

    retrieved = [_passage(idx, 2, 0.8), _passage(idx, 0, 0.7)]
    ans = Answerer(Retriever(), Reader(), threshold=0.5, context=100)
    out = ans.decide("What does it cover?", retrieved, ans.read("What does it cover?", retrieved), 0.5)
    assert [p.text for p in seen[-1]] == [BODY_A.strip()]  # one merged window
    assert out.text == "four batteries" and SOURCE[out.start:out.end] == out.text
    assert [c.chunk_id for c in out.citations] == ["d:1"] and out.evidence.text == "It covers four batteries."
    ans.windows = "separate"  # each passage in its own window; the span still cites its chunk
    out = ans.decide("What does it cover?", retrieved, ans.read("What does it cover?", retrieved), 0.5)
    assert [(p.start, p.end) for p in seen[-1]] == [widen(p, idx, 100) for p in retrieved]
    assert out.text == "four batteries" and [c.chunk_id for c in out.citations] == ["d:1"]
    ans.context = 0
    ans.read("What does it cover?", retrieved)
    assert seen[-1] == retrieved


def test_load_with_context_reads_windows_of_the_real_index_and_cites_its_chunks(seed_index, embedder, tiny_qa_model):
    import pytest

    import rag

    qa = rag.load(seed_index, embedder=embedder, reader=str(tiny_qa_model), context=300)
    seen = []
    reader = qa.answerer.reader
    plain_read = reader.read

    def spy(question, passages, qvec=None):
        seen.append(list(passages))
        return plain_read(question, passages, qvec)

    reader.read = spy
    q = "Who heads Russia's Federal Service for Military and Technical Cooperation?"
    retrieved = qa.retrieve(q, k=3)
    a = qa.ask(q, k=3, threshold=0.0)
    windows = seen[-1]
    assert sum(len(w.text) for w in windows) > sum(len(p.text) for p in retrieved)
    for w in windows:
        assert qa.source(w.doc_id)[w.start:w.end] == w.text
    chunk_ids = {c.chunk_id for c in qa.index.chunks}
    assert a.text is not None and qa.source(a.doc_id)[a.start:a.end] == a.text
    cited = a.citations[0]  # the passage of the answer's own span: a chunk of the index that holds it
    assert cited.chunk_id in chunk_ids and cited.doc_id == a.doc_id and cited.start <= a.start and a.end <= cited.end
    assert qa.source(cited.doc_id)[cited.start:cited.end] == cited.text
    qa.context = 0  # set later, it still applies
    qa.ask(q, k=3, threshold=0.0)
    assert [(p.doc_id, p.start, p.end) for p in seen[-1]] == [(p.doc_id, p.start, p.end) for p in retrieved]
    for bad in (-1, 2.5, "300", True):
        with pytest.raises(rag.InputError, match="context must be a whole number of characters"):
            rag.load(seed_index, embedder=embedder, context=bad)
    qa.context, qa.windows = 300, "separate"
    qa.ask(q, k=3, threshold=0.0)
    assert len(seen[-1]) == 3 and all(w.start <= p.start and p.end <= w.end for w, p in zip(seen[-1], retrieved))
    with pytest.raises(rag.InputError, match="windows must be one of merged, separate"):
        rag.load(seed_index, embedder=embedder, windows="overlapping")


def test_cli_ask_refuses_a_negative_context(seed_index, capsys):
    from rag.cli import main

    assert main(["ask", "Who is Turkey's foreign minister?", "--index", str(seed_index), "--context", "-3"]) != 0
    assert "context must be a whole number of characters" in capsys.readouterr().err


def test_a_figure_answer_read_widened_takes_its_rivals_from_the_passages_read_alone():
    """Read widened, one article's confident window squashes another's figure; the rivals of a
    figure answer come from a second, plain read of the passages (only for figure answers)."""
    from rag.answer import Answerer

    idx = FakeIndex()
    calls = []
    deal, greece = SOURCE.index("July"), OTHER.index("May 1998")

    class Reader:
        name, uses_vectors = "toy", False

        def read(self, question, passages, qvec=None):
            widened = any(len(p.text) > len(c.text) for p in passages for c in idx.chunks if c.chunk_id == p.chunk_id)
            calls.append("windows" if widened else "plain")
            d = next(p for p in passages if p.doc_id == "d" and p.start <= deal < p.end)
            o = next(p for p in passages if p.doc_id == "o")
            answer = question.startswith("When")
            text = "July" if answer else "It covers"
            a = deal if answer else SOURCE.index(text)
            best = SpanCandidate("d", a, a + len(text), text, 0.95, d)
            rival = SpanCandidate("o", greece, greece + 8, "May 1998", 0.001 if widened else 0.4, o)
            return ReaderOutput([best, rival], 0.0)

    class Retriever:
        index = idx

    retrieved = [_passage(idx, 1, 0.8), _passage(idx, 4, 0.7)]
    ans = Answerer(Retriever(), Reader(), threshold=0.5, context=100)

    def ask(q):
        return ans.decide(q, retrieved, ans.read(q, retrieved), 0.5,
                          plain_read=lambda: ans.reader.read(q, retrieved))

    out = ask("When did the first battery arrive?")
    assert out.text == "July" and [a.text for a in out.alternatives] == ["May 1998"]
    assert calls == ["windows", "plain"]
    calls.clear()
    out = ask("What does the deal cover?")  # not a figure: no second read, no rival
    assert out.text == "It covers" and out.alternatives == [] and calls == ["windows"]
