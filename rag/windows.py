"""Reading windows: what a reader reads around the retrieved passages, and what an answer cites.

A chunk boundary can cut an answer's sentence off from the sentence that says what it is about
("He said ..." with the speaker named just before the cut). A reader tuned to read with more
context gets each retrieved passage widened by up to ``chars`` characters on each side into the
neighbouring chunks of its article (indexed body text only: never across a gap the chunks do not
cover, such as stripped page chrome, and never cutting a word). Two ways to lay the windows out
(``WINDOW_MODES``, chosen on dev per reader): "merged", the windows of one article that overlap or
touch joined into one, so no text is read twice; or "separate", each passage read in its own window,
centred on it, so text where two windows overlap is read twice and a span found in both adds up the
probability of each reading (as across the stride windows of one long passage). A window keeps the
place, score and chunk id of its (best) retrieved passage.

The reader's spans then cite what retrieval found, not the window: ``cite`` gives each span the
retrieved passage that holds it or, for a span in a widened margin, the index chunk that holds it.
Offsets stay absolute in the article's source text throughout, so ``source[start:end] == text``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .errors import InputError
from .schema import Chunk, Passage

WINDOW_MODES = ("merged", "separate")


def check_windows(mode: str) -> str:
    if mode not in WINDOW_MODES:
        raise InputError(f"windows must be one of {', '.join(WINDOW_MODES)}, got {mode!r}")
    return mode


def _chunks_of(index, doc_id: str) -> list[Chunk]:
    """The index's chunks of ``doc_id`` in text order (cached on the index object)."""
    cache = index.__dict__.setdefault("_chunks_by_doc", {})
    if not cache:
        for c in index.chunks:
            cache.setdefault(c.doc_id, []).append(c)
        for cs in cache.values():
            cs.sort(key=lambda c: c.start)
    return cache.get(doc_id, [])


def _covered(chunks: Sequence[Chunk], source: str) -> list[tuple[int, int]]:
    """The runs of text the chunks cover, chunks that touch or overlap (or are separated only by
    whitespace) joined into one run."""
    runs: list[list[int]] = []
    for c in chunks:
        if runs and (c.start <= runs[-1][1] or not source[runs[-1][1]:c.start].strip()):
            runs[-1][1] = max(runs[-1][1], c.end)
        else:
            runs.append([c.start, c.end])
    return [(a, b) for a, b in runs]


def widen(passage: Passage, index, chars: int) -> tuple[int, int]:
    """The offsets of ``passage`` widened by up to ``chars`` characters on each side, inside the run
    of indexed text that holds it, moved inwards to whole words."""
    source = index.source(passage.doc_id)
    lo, hi = passage.start, passage.end
    for a, b in _covered(_chunks_of(index, passage.doc_id), source):
        if a <= passage.start < b:
            lo, hi = a, b
            break
    start, end = max(lo, passage.start - chars), min(hi, passage.end + chars)
    while start < passage.start and not (start == lo or source[start - 1].isspace()):
        start += 1  # not inside a word
    while end > passage.end and not (end == hi or source[end].isspace()):
        end -= 1
    while start < passage.start and source[start].isspace():
        start += 1
    while end > passage.end and source[end - 1].isspace():
        end -= 1
    return start, end


def reading_windows(passages: Sequence[Passage], index, chars: int, windows: str = "merged") -> list[Passage]:
    """The passages widened by ``chars`` (``widen``): with ``windows`` "merged", merged per article
    where they overlap or touch, in the order of each window's best passage; with "separate", one
    window per passage, in the passages' order. ``chars`` 0 gives the passages unchanged."""
    check_windows(windows)
    if chars <= 0 or not passages:
        return list(passages)
    if windows == "separate":
        out = []
        for p in passages:
            a, b = widen(p, index, chars)
            out.append(replace(p, text=index.source(p.doc_id)[a:b], start=a, end=b))
        return out
    spans: dict[str, list[list]] = {}  # doc_id -> [start, end, rank of its best passage]
    for rank, p in enumerate(passages):
        a, b = widen(p, index, chars)
        spans.setdefault(p.doc_id, []).append([a, b, rank])
    windows: list[tuple[int, Passage]] = []
    for doc_id, items in spans.items():
        source = index.source(doc_id)
        items.sort()
        merged = [items[0]]
        for a, b, rank in items[1:]:
            last = merged[-1]
            if a <= last[1] or not source[last[1]:a].strip():
                last[1], last[2] = max(last[1], b), min(last[2], rank)
            else:
                merged.append([a, b, rank])
        for a, b, rank in merged:
            best = passages[rank]
            windows.append((rank, replace(best, text=source[a:b], start=a, end=b)))
    return [w for _, w in sorted(windows, key=lambda x: x[0])]


def cite(candidates: Sequence, passages: Sequence[Passage], index) -> list:
    """The reader's span candidates (read from windows) with ``passage`` set to what they cite: the
    retrieved passage that holds the span (the best-ranked one), else the index chunk that holds it,
    scored as the window was; a span across two chunks keeps its window."""
    out = []
    for c in candidates:
        holder = next((p for p in passages if p.doc_id == c.doc_id and p.start <= c.start and c.end <= p.end), None)
        if holder is None:
            chunk = next((k for k in _chunks_of(index, c.doc_id) if k.start <= c.start and c.end <= k.end), None)
            if chunk is not None:
                holder = Passage(doc_id=chunk.doc_id, title=chunk.title, text=chunk.text, start=chunk.start,
                                 end=chunk.end, score=c.passage.score, chunk_id=chunk.chunk_id)
        out.append(replace(c, passage=holder) if holder is not None else c)
    return out
