"""The one object the CLI, the app, the eval suite and outside scripts share."""
from __future__ import annotations

import dataclasses
import os
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from .embedding import Embedder
from .errors import InputError
from .index.opened import OpenIndex, open_index
from .retrieval import MODES, Retriever, check_context, check_k, check_mode
from .schema import Answer, Passage
from .windows import check_windows

DEFAULT_MODE = "hybrid"  # best recall@5 and MRR on the gold dev split (evals/README.md)
DEFAULT_K = 5  # passages retrieved; also read, for a reader whose settings file has no tuned k
MAX_QUESTION_CHARS = 1000
# Invisible format characters that belong to ordinary text: zero-width (non-)joiners (Persian,
# Indic scripts, emoji) and left-to-right / right-to-left marks. Other format characters (bidi
# overrides, zero-width spaces, ...) are refused with the control characters.
_TEXT_FORMAT_CHARS = frozenset("\u200c\u200d\u200e\u200f")


def validate_question(question: object) -> str:
    """Return the question stripped, or raise InputError saying what is wrong with it.

    Any script is accepted (a question the articles cannot answer gets an abstaining Answer).
    Refused: non-text, empty or whitespace only, over MAX_QUESTION_CHARS, control characters.
    """
    if not isinstance(question, str):
        raise InputError(f"the question must be text, got {type(question).__name__}")
    q = question.strip().lstrip("\ufeff").strip()  # a byte-order mark from a Windows text file
    if not q:
        raise InputError("the question is empty: type a question, e.g. \"Who heads Rosoboronexport?\"")
    if len(q) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is {len(q):,} characters long; the limit is {MAX_QUESTION_CHARS:,}: "
                         "ask about one thing at a time")
    bad = sorted({c for c in q if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co")
                  and c not in "\t\n\r" and c not in _TEXT_FORMAT_CHARS})
    if bad:
        names = ", ".join(f"U+{ord(c):04X}" for c in bad[:3])
        raise InputError(f"the question contains control characters ({names}): remove them and ask again")
    return " ".join(q.split())


class QA:
    """Retrieval and answering over one index. Models load on first use."""

    def __init__(self, index_dir: str | os.PathLike = "index", *, model: str | os.PathLike | None = None,
                 embedder: Embedder | None = None, reader: object = None, mode: str = DEFAULT_MODE,
                 k: int | None = None, threshold: float | None = None, context: int | None = None,
                 windows: str | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.index: OpenIndex = open_index(self.index_dir)
        self.embedder = embedder or Embedder(model if model is not None else self.index.model)
        self.retriever = Retriever(self.index, self.embedder)
        self.mode = check_mode(mode)
        self.k = check_k(k) if k is not None else None  # None: the reader's tuned k (``read_k``)
        # characters of neighbouring text read around each passage (rag.windows); None: the reader's own
        self.context = check_context(context) if context is not None else None
        # how those windows are laid out ("merged" or "separate", rag.windows); None: the reader's own
        self.windows = check_windows(windows) if windows is not None else None
        self._reader_spec = reader
        self._answerer = None
        self._threshold = threshold
        self._lock = threading.Lock()

    # -- retrieval ---------------------------------------------------------------------------------
    def retrieve(self, question: str, k: int = DEFAULT_K, mode: str | None = None) -> list[Passage]:
        """The ``k`` passages that best match ``question``, best first."""
        q = validate_question(question)
        return [self._paged(p) for p in self.retriever.search(q, check_k(k), check_mode(mode or self.mode))]

    # -- answering ---------------------------------------------------------------------------------
    @property
    def read_k(self) -> int:
        """Passages the reader reads per question when ``ask`` is given no ``k``: the ``k`` passed to
        ``load``, else the reader's tuned k (its settings file, chosen on the gold dev split), else
        ``DEFAULT_K``. Reading it loads the reader."""
        return self.k or self.answerer.k or DEFAULT_K

    @property
    def answerer(self):
        with self._lock:
            if self._answerer is None:
                from .answer import Answerer

                self._answerer = Answerer.create(self.retriever, reader=self._reader_spec, threshold=self._threshold)
                self._apply_reading(self._answerer)
            return self._answerer

    def _apply_reading(self, answerer) -> None:
        """The QA's own reading context and window layout, where given, over the reader's tuned ones
        (checked again: they may have been set on the QA after it was made)."""
        if self.context is not None:
            answerer.context = check_context(self.context)
        if self.windows is not None:
            answerer.windows = check_windows(self.windows)

    def tuning(self, k: int | None = None):
        """The calibration and abstention threshold that answering with ``k`` passages (default:
        ``read_k``) at the QA's context and windows uses (``rag.readers.settings.Tuning``; its
        ``source`` is "untuned" where the reader's dev sweep never calibrated that setting). Loads
        the reader."""
        answerer = self.answerer
        self._apply_reading(answerer)
        return answerer.tuning(check_k(k if k is not None else self.read_k))

    def ask(self, question: str, *, k: int | None = None, mode: str | None = None,
            threshold: float | None = None) -> Answer:
        """An extractive answer with citations, or ``text=None`` when the articles do not say."""
        return self.ask_many([question], k=k, mode=mode, threshold=threshold)[0]

    def ask_many(self, questions: Sequence[str], *, k: int | None = None, mode: str | None = None,
                 threshold: float | None = None) -> list[Answer]:
        """Answers for many questions; their vectors are encoded in batches."""
        qs = [validate_question(q) for q in questions]
        k = check_k(k if k is not None else self.read_k)
        self._apply_reading(self.answerer)  # context / windows may be set on the QA after its answerer was made
        answers = self.answerer.answer_many(qs, k=k, mode=check_mode(mode or self.mode), threshold=threshold)
        return [self._paged_answer(a) for a in answers]

    # -- sources -----------------------------------------------------------------------------------
    def source(self, doc_id: str) -> str:
        """The text ``doc_id``'s offsets index: ``qa.source(a.doc_id)[a.start:a.end] == a.text``.

        For a ``.txt`` article it is the file's text; for HTML, PDF and Markdown the text made of
        the file at build time. It comes from the index, so it stays right when the file changes
        or is moved until the next ``rag index``.
        """
        if not isinstance(doc_id, str) or doc_id not in self.index.documents:
            known = ", ".join(sorted(self.index.documents)[:5])
            raise InputError(f"no document {doc_id!r} in the index at {str(self.index_dir)!r} (ids look like: "
                             f"{known}); take the id from an answer's doc_id or a citation")
        return self.index.source(doc_id)

    def _paged(self, p: Passage) -> Passage:
        doc = self.index.documents.get(p.doc_id)
        page = doc.page_at(p.start) if doc is not None else None
        return p if page is None or p.page == page else dataclasses.replace(p, page=page)

    def _paged_answer(self, a: Answer) -> Answer:
        """The answer with the PDF page of its span, evidence, citations and alternatives filled in."""
        doc = self.index.documents.get(a.doc_id) if a.doc_id else None
        if not any(d.pages for d in self._docs_of(a)):
            return a
        return dataclasses.replace(
            a, page=doc.page_at(a.start) if doc is not None and a.start is not None else None,
            evidence=self._paged(a.evidence) if a.evidence else None,
            citations=[self._paged(c) for c in a.citations],
            alternatives=[self._paged_answer(x) for x in a.alternatives])

    def _docs_of(self, a: Answer):
        ids = {a.doc_id, *(c.doc_id for c in a.citations), *(x.doc_id for x in a.alternatives)}
        if a.evidence:
            ids.add(a.evidence.doc_id)
        return [self.index.documents[i] for i in ids if i in self.index.documents]

    # -- state -------------------------------------------------------------------------------------
    def stale(self) -> list[str]:
        """Why the index no longer matches its articles ([] when up to date)."""
        return self.index.stale()

    @property
    def modes(self) -> tuple[str, ...]:
        return MODES


def load(index_dir: str | os.PathLike = "index", **kwargs) -> QA:
    """Open an index for questions. Keyword settings: model, reader, mode, k (passages the reader
    reads; default: the reader's tuned k), threshold, context (characters of each passage's
    neighbouring text the reader also reads, ``rag.windows``; default: the reader's, tuned on dev),
    windows ("merged": the widened passages of one article that overlap read as one window;
    "separate": each passage in its own window; default: the reader's)."""
    return QA(index_dir, **kwargs)
