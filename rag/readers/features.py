"""Interim reader: the best-matching sentence of the top passages (replaced by the feature reader)."""
from __future__ import annotations

from collections.abc import Sequence

from ..lexical import tokenize
from ..schema import Passage
from ..sentences import split_sentences
from .base import ReaderOutput, SpanCandidate


class FeatureReader:
    name = "features"

    def __init__(self, index=None, embedder=None) -> None:
        self.index, self.embedder = index, embedder

    def read(self, question: str, passages: Sequence[Passage]) -> ReaderOutput:
        q = set(tokenize(question))
        cands = []
        for p in passages[:3]:
            for a, b in split_sentences(p.text):
                words = set(tokenize(p.text[a:b]))
                overlap = len(q & words) / max(1, len(q))
                cands.append(SpanCandidate(p.doc_id, p.start + a, p.start + b, p.text[a:b], overlap, p))
        cands.sort(key=lambda c: -c.score)
        return ReaderOutput(cands[:5])
