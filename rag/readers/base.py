"""The protocol every reader implements, and the span candidates readers return.

A reader looks at the retrieved passages for a question and proposes answer spans with scores.
It does not decide abstention, merge agreeing sources or build citations: ``rag.answer`` does that
for every reader alike, from the offsets the reader returns.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

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
    """What every reader is: a ``name``, ``uses_vectors`` and ``read``.

    ``name`` picks the settings file (``rag/models/<name>_settings.json``: calibration and
    threshold; a reader without one is used uncalibrated at the default threshold).
    ``uses_vectors``: True when ``read`` wants the question's embedding as ``qvec`` (callers then
    encode it even in BM25 mode); False readers get ``qvec=None``.
    ``read(question, passages, qvec)`` proposes answer spans inside ``passages``, best first.

    A reader of your own plugs in by name through ``rag.readers.registry.register``.
    """

    name: str
    uses_vectors: bool

    def read(self, question: str, passages: Sequence[Passage], qvec: np.ndarray | None = None) -> ReaderOutput: ...
