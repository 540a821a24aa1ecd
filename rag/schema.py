"""Typed values passed between the pipeline's stages.

Path -> Document -> Chunk -> (vectors) -> Passage -> Answer

Every span-bearing value carries ``doc_id``, ``start`` and ``end``: character offsets into the
document's source text, and ``text`` is always exactly ``source[start:end]``. For a ``.txt``
article the source is the file's text as ``Path.read_text(encoding="utf-8")`` returns it; for
HTML, PDF and Markdown it is the text ``rag.formats`` made of the file. The index stores every
source (``QA.source(doc_id)``).
"""
from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One cleaned article: its title and the body segments kept, as offsets into ``source``."""

    doc_id: str
    path: str  # relative to the docs folder, posix
    title: str
    title_start: int
    title_end: int
    segments: tuple[tuple[int, int], ...]  # kept body regions, in order, never overlapping
    content_hash: str  # sha256 of the raw file bytes
    source: str = field(repr=False, compare=False, default="")
    format: str = "txt"  # txt, html, pdf or markdown (rag.formats)
    pages: tuple[int, ...] = ()  # PDF: the offset in source where each page starts
    meta: dict[str, str] = field(default_factory=dict, compare=False)  # title, author, date, site, url

    def page_at(self, offset: int) -> int | None:
        """The 1-based PDF page holding ``offset`` (None when the document has no pages)."""
        if not self.pages:
            return None
        return max(1, bisect.bisect_right(self.pages, offset))

    @property
    def body(self) -> str:
        """The kept body regions joined by blank lines (for display; offsets live in segments)."""
        return "\n\n".join(self.source[s:e] for s, e in self.segments)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        d["segments"] = [list(s) for s in self.segments]
        d["pages"] = list(self.pages)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "") -> "Document":
        return cls(
            doc_id=d["doc_id"], path=d["path"], title=d["title"], title_start=d["title_start"],
            title_end=d["title_end"], segments=tuple((int(s), int(e)) for s, e in d["segments"]),
            content_hash=d["content_hash"], source=source, format=d.get("format", "txt"),
            pages=tuple(int(p) for p in d.get("pages", ())), meta=dict(d.get("meta") or {}),
        )


@dataclass(frozen=True)
class Chunk:
    """A token-counted, sentence-aligned piece of one document body segment."""

    chunk_id: str  # "doc_id:n"
    doc_id: str
    n: int
    start: int
    end: int
    text: str
    title: str
    tokens: int  # tiktoken count of ``text``

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Chunk":
        return cls(**{k: d[k] for k in ("chunk_id", "doc_id", "n", "start", "end", "text", "title", "tokens")})


@dataclass(frozen=True)
class Passage:
    """A retrieved, scored span of a document (a chunk, or a sentence used as evidence)."""

    doc_id: str
    title: str
    text: str
    start: int
    end: int
    score: float
    chunk_id: str | None = None
    page: int | None = None  # the PDF page the passage starts on (None for other formats)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Passage":
        return cls(doc_id=d["doc_id"], title=d["title"], text=d["text"], start=int(d["start"]),
                   end=int(d["end"]), score=float(d["score"]), chunk_id=d.get("chunk_id"), page=d.get("page"))


@dataclass(frozen=True)
class Answer:
    """An extractive answer, or an abstention (``text is None``: "not in these articles").

    When answering, ``text == source[start:end]`` of ``doc_id`` and ``evidence`` is the sentence
    that supports it. ``citations`` are the passages supporting it, best first (when abstaining,
    the closest passages found). ``alternatives`` are disagreeing answers from other sources.
    """

    text: str | None
    score: float
    doc_id: str | None = None
    start: int | None = None
    end: int | None = None
    evidence: Passage | None = None
    citations: list[Passage] = field(default_factory=list)
    alternatives: list["Answer"] = field(default_factory=list)
    question: str = ""
    reader: str = ""
    reason: str | None = None  # why it abstained when that is known (e.g. an unknown name)
    page: int | None = None  # the PDF page of the answer span (None for other formats)

    @property
    def abstained(self) -> bool:
        return self.text is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "text": self.text,
            "score": self.score,
            "doc_id": self.doc_id,
            "start": self.start,
            "end": self.end,
            "evidence": self.evidence.to_dict() if self.evidence else None,
            "citations": [c.to_dict() for c in self.citations],
            "alternatives": [a.to_dict() for a in self.alternatives],
            "reader": self.reader,
            "reason": self.reason,
            "page": self.page,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Answer":
        return cls(
            text=d["text"], score=float(d["score"]), doc_id=d.get("doc_id"), start=d.get("start"),
            end=d.get("end"),
            evidence=Passage.from_dict(d["evidence"]) if d.get("evidence") else None,
            citations=[Passage.from_dict(c) for c in d.get("citations", [])],
            alternatives=[Answer.from_dict(a) for a in d.get("alternatives", [])],
            question=d.get("question", ""), reader=d.get("reader", ""), reason=d.get("reason"),
            page=d.get("page"),
        )


@dataclass(frozen=True)
class IndexInfo:
    """What ``build_index`` did."""

    index_dir: str
    num_documents: int
    num_chunks: int
    model: str
    dimension: int
    rebuilt: bool  # False when the index was already up to date and nothing was done
    encoded_chunks: int = 0  # chunks embedded in this run (0 for an unchanged corpus)
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d
