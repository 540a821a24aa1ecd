"""Property tests (hypothesis) for ingestion, sentence splitting and chunking.

Offsets are the contract every later stage relies on (``source[start:end] == text``), so these
check it on arbitrary text: unicode, CRLF and lone CR, blank lines, very long words, runs of
punctuation, bullets and separators, other scripts.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from rag.chunking import ChunkerSettings, chunk_document, count_tokens
from rag.documents import parse_article
from rag.sentences import split_sentences

# RAG_PROPERTY_EXAMPLES=5000 for a longer hunt; 200 keeps the suite fast.
PROPS = settings(max_examples=int(os.environ.get("RAG_PROPERTY_EXAMPLES", "200")), deadline=None, suppress_health_check=[HealthCheck.too_slow])

_WORDS = ["Moscow", "S-400", "Dr.", "U.S.", "the", "deal", "Turkey", "said", "2019", "$2", "billion",
          "\u00c9tienne", "\u0420\u043e\u0441\u0441\u0438\u044f", "\u4e2d\u56fd\u7684\u5bfc\u5f39",
          "caf\u00e9", "\u2014", "\u2022", "-", "More", "from", "What", "you", "need", "to", "know:",
          "https://example.com/a/very/long/path?with=query&and=more", "a" * 120,
          "\u4e00\u4e8c\u4e09\u56db\u4e94\u516d\u4e03\u516b\u4e5d\u5341" * 8, "e\u0301", "\U0001F680\U0001F680"]
_PUNCT = [".", "!", "?", "...", "?!", ".\u201d", "'.", ":", ";", ",", ")", "(", "\"", "\u2019", "/TASS/."]
_SPACE = [" ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", "\n \n", "\u00a0", "\u2003", " \n"]

# Text made of plausible pieces (so boundaries, bullets, headings and chrome rules all fire) ...
_pieces = st.lists(st.one_of(st.sampled_from(_WORDS), st.sampled_from(_PUNCT), st.sampled_from(_SPACE),
                             st.text(min_size=1, max_size=12)), max_size=120).map("".join)
# ... and anything at all, including control characters and surrogate-free odd code points.
_anything = st.text(max_size=400)
TEXT = st.one_of(_pieces, _anything)
# Most short random texts have no body after the title line: give them one.
TITLED = TEXT.map(lambda t: "A headline for the property test\n" + t)


def _trimmed(s: str) -> bool:
    return s == s.strip() and s != ""


def _check_spans(spans, lo: int, hi: int, text: str) -> None:
    prev_end = lo
    for s, e in spans:
        assert lo <= s < e <= hi, (s, e, lo, hi)
        assert s >= prev_end, "spans overlap or are out of order"
        assert _trimmed(text[s:e]), repr(text[s:e])
        prev_end = e


@PROPS
@given(TEXT)
def test_parse_article_never_raises_and_segments_are_sound(text):
    doc = parse_article(text, "x")
    assert doc.source == text
    assert text[doc.title_start:doc.title_end] == doc.title
    if doc.title:
        assert _trimmed(doc.title)
    _check_spans(doc.segments, 0, len(text), text)
    if doc.segments:
        assert doc.segments[0][0] >= doc.title_end  # the body comes after the title


@PROPS
@given(TEXT, st.data())
def test_sentences_ordered_disjoint_trimmed_within_window(text, data):
    lo = data.draw(st.integers(0, len(text)))
    hi = data.draw(st.integers(lo, len(text)))
    spans = split_sentences(text, lo, hi)
    _check_spans(spans, lo, hi, text)
    # Every non-space character of the window is in a sentence; no sentence crosses a line break.
    covered = set()
    for s, e in spans:
        covered.update(range(s, e))
    assert all(i in covered or text[i].isspace() for i in range(lo, hi))
    for s, e in spans:
        assert "\n" not in text[s:e]


_CHUNKER = st.builds(lambda m, o: ChunkerSettings(max_tokens=m, overlap_tokens=min(o, m - 1)),
                     st.integers(12, 40), st.integers(0, 8))


def _check_chunks(doc, chunks, cfg: ChunkerSettings, fits=None) -> None:
    src = doc.source
    assert [c.n for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert src[c.start:c.end] == c.text  # offsets exact
        assert _trimmed(c.text)
        assert c.tokens == count_tokens(c.text) <= cfg.max_tokens, (c.tokens, c.text)
        assert any(s <= c.start and c.end <= e for s, e in doc.segments)  # never crosses removed chrome
        if fits is not None:
            assert fits(c.text), c.text
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start and a.end < b.end  # always moving forward
        if b.start < a.end:  # consecutive chunks share text: at most the declared overlap, exactly
            assert count_tokens(src[b.start:a.end]) <= cfg.overlap_tokens, src[b.start:a.end]
            assert src[b.start:a.end] == src[b.start:a.end].strip()
    # No gaps: every non-space body character is in some chunk.
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    for s, e in doc.segments:
        missing = [i for i in range(s, e) if i not in covered and not src[i].isspace()]
        assert not missing, repr(src[missing[0]:missing[0] + 20])


@PROPS
@given(st.one_of(TEXT, TITLED), _CHUNKER)
def test_chunks_cover_body_exact_offsets_within_budget(text, cfg):
    doc = parse_article(text, "x")
    _check_chunks(doc, chunk_document(doc, cfg), cfg)


@PROPS
@given(TITLED, _CHUNKER, st.integers(4, 60))
def test_chunks_respect_a_fits_check(text, cfg, max_chars):
    doc = parse_article(text, "x")
    assume(doc.segments)

    def fits(t: str) -> bool:
        return len(t) <= max_chars

    _check_chunks(doc, chunk_document(doc, cfg, fits=fits), cfg, fits)


@PROPS
@given(st.lists(st.sampled_from(_WORDS[:12]), min_size=30, max_size=200), _CHUNKER)
def test_long_prose_overlaps_are_bounded(words, cfg):
    text = "A headline for the property test\n" + " ".join(w + ("." if i % 7 == 6 else "")
                                                           for i, w in enumerate(words)) + "\n"
    doc = parse_article(text, "x")
    chunks = chunk_document(doc, cfg)
    assert chunks
    _check_chunks(doc, chunks, cfg)
