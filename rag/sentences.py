"""Offset-exact sentence splitting (rule based: fast, deterministic, no model).

Used by the chunker (chunks are sentence-aligned) and by the readers (the evidence sentence).
A sentence never crosses a line break: in these articles a line is a paragraph.
"""
from __future__ import annotations

import re

# Words after which a full stop does not end a sentence.
_ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "gen", "col", "lt", "maj", "capt", "sgt", "adm",
    "gov", "sen", "rep", "pres", "vs", "etc", "inc", "ltd", "co", "corp", "no", "fig", "jan", "feb",
    "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "e.g", "i.e",
    "approx", "est", "dept", "univ", "mt", "ft",
}
# A candidate boundary: end punctuation, optional closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"[.!?]+['\"\u2019\u201d)\]]*(?=\s+)")
_NEXT_START = re.compile(r"\s+(['\"\u2018\u201c(\[]?[A-Z0-9\u00c0-\u024f/])")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Return ``(start, end)`` offsets of the sentences of ``text[start:end]``, whitespace trimmed."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for line in text[start:end].split("\n"):
        line_start, line_end = pos, pos + len(line)
        pos = line_end + 1
        s = line_start
        for m in _BOUNDARY.finditer(text, line_start, line_end):
            b = m.end()
            word = re.search(r"([\w.]+)[.!?]*['\"\u2019\u201d)\]]*$", text[s:b])
            token = word.group(1).lower().rstrip(".") if word else ""
            if token in _ABBREV or (len(token) == 1 and token.isalpha()):
                continue  # "Dr. Smith", "J. Smith"
            nxt = _NEXT_START.match(text, b, line_end)
            if not nxt:
                continue  # next word starts lower-case: not a boundary
            spans.append((s, b))
            s = nxt.start(1)
        spans.append((s, line_end))
    out: list[tuple[int, int]] = []
    pending: int | None = None  # start of a fragment waiting to be joined to the next sentence
    pending_end = 0
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e <= s:
            continue
        fragment = len(text[s:e].split()) <= 3 and re.search(r"[.!?]$", text[s:e]) is not None
        if pending is not None:
            if "\n" not in text[pending:s]:
                s = pending
            else:
                out.append((pending, pending_end))  # a fragment alone on its line stays a sentence
        pending = None
        # Datelines and fragments ("Moscow.", "/TASS/.") join the sentence that follows them.
        if fragment:
            pending, pending_end = s, e
            continue
        out.append((s, e))
    if pending is not None:
        out.append((pending, pending_end))
    return out
