"""The protocol every reader implements, and the span candidates readers return.

A reader looks at the retrieved passages for a question and proposes answer spans with scores.
It does not decide abstention, merge agreeing sources or build citations: ``rag.answer`` does that
for every reader alike, from the offsets the reader returns.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..schema import Passage


@dataclass(frozen=True)
class SpanCandidate:
    """A proposed answer: ``text == source[start:end]`` of ``doc_id``, inside ``passage``.

    ``score`` is the reader's confidence in [0, 1] that this span answers the question.
    ``features`` holds the named signals behind the score (for fusion, debugging and tests).
    """

    doc_id: str
    start: int
    end: int
    text: str
    score: float
    passage: Passage
    features: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ReaderOutput:
    """Candidates best first, and the reader's confidence in [0, 1] that nothing answers."""

    candidates: list[SpanCandidate]
    no_answer: float = 0.0


@runtime_checkable
class Reader(Protocol):
    """Anything with a name and ``read(question, passages) -> ReaderOutput``."""

    name: str

    def read(self, question: str, passages: Sequence[Passage]) -> ReaderOutput: ...
