"""Readers: turn retrieved passages into scored answer spans (see ``base.Reader``)."""
from .base import Reader, ReaderOutput, SpanCandidate

__all__ = ["Reader", "ReaderOutput", "SpanCandidate"]
