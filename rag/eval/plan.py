"""What one evaluation run does: the retrieval modes and readers to compare, the cut-offs and
thresholds every table uses, and the ``Setting`` through which a question reaches the reader.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .datasets import GoldItem
from ..errors import InputError
from ..pipeline import DEFAULT_MODE, QA
from ..retrieval import check_mode
from ..schema import Answer


RETRIEVAL_K = 10
RETRIEVAL_KS = tuple(range(1, RETRIEVAL_K + 1))
TABLE_KS = (1, 3, 5, 10)
THRESHOLDS = tuple(round(i * 0.02, 2) for i in range(51))  # 0.00, 0.02, ..., 1.00
CALIBRATION_BINS = 10
CORRECT_F1 = 0.5  # an answer is "correct" for calibration when its F1 >= 0.5 (EM = 1 implies F1 = 1)
BATCH = 32
WORST = 15
PLOTS = ("recall_at_k.png", "threshold.png", "reliability.png")
CORRECT_DEFINITION = f"F1 >= {CORRECT_F1} against the best-matching gold answer (an exact match counts too)"
LATENCY_METHOD = ("wall time of one ask_many([question], threshold=0.0) call per question (retrieval, "
                  "question encoding and reading included), over every question, after one warm-up ask that "
                  "loads the models")
Setting = Callable[[QA, list[str], str], list[Answer]]  # (qa, questions, mode) -> raw answers (threshold 0)


def parse_modes(spec: str | None) -> tuple[str, ...]:
    """``"dense,bm25"`` -> ("dense", "bm25"), each checked, duplicates dropped."""
    names = [m.strip() for m in (spec or "").split(",") if m.strip()]
    if not names:
        raise InputError("--modes is empty: give one or more of dense,bm25,hybrid")
    return tuple(dict.fromkeys(check_mode(m) for m in names))


def parse_readers(spec: str | None) -> tuple[str | None, ...]:
    """``None`` -> (None,) (the default reader); ``"features,neural"`` -> ("features", "neural");
    ``"none"`` -> () (retrieval only: no reader is loaded and no question is answered)."""
    if spec is None:
        return (None,)
    if spec.strip().lower() == "none":
        return ()
    names = tuple(dict.fromkeys(r.strip() for r in spec.split(",") if r.strip()))
    if not names:
        raise InputError("--readers is empty: give e.g. features,minilm,fast,mpnet,fused")
    return names


def ask_open(qa: QA, questions: list[str], mode: str) -> list[Answer]:
    """The ``open`` setting: retrieval over the whole index, raw best answer (threshold 0)."""
    return qa.ask_many(questions, mode=mode, threshold=0.0)


def make_given_paragraph(items: Sequence[GoldItem]) -> Setting:
    """The ``given_paragraph`` setting: the reader reads only the question's own document.

    For SQuAD files a document is one paragraph, so this is the classic reading-comprehension
    score, separate from retrieval. Uses the reader and the answer logic of the QA object.
    """
    doc_of: dict[str, str] = {}
    for it in items:
        if it.doc_ids:
            doc_of.setdefault(it.question, it.doc_ids[0])

    def given(qa: QA, questions: list[str], mode: str) -> list[Answer]:
        rows_of: dict[str, list[int]] = {}
        for row, c in enumerate(qa.index.chunks):
            rows_of.setdefault(c.doc_id, []).append(row)
        reader = qa.answerer.reader
        out = []
        for q in questions:
            passages = [qa.retriever.passage(r, 1.0) for r in rows_of.get(doc_of.get(q, ""), [])]
            qvec = qa.retriever.encode([q])[0] if reader.uses_vectors else None
            result = reader.read(q, passages, qvec)
            out.append(qa.answerer.decide(q, passages, result, 0.0))
        return out

    return given


@dataclass
class EvalPlan:
    """What to evaluate: questions, modes, readers, settings, and what to record about them."""

    name: str  # "gold" or "squad"
    items: list[GoldItem]
    modes: tuple[str, ...]
    readers: tuple[str | None, ...] = (None,)
    settings: dict[str, Setting] = field(default_factory=lambda: {"open": ask_open})
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def primary_mode(modes: Sequence[str]) -> str:
    return DEFAULT_MODE if DEFAULT_MODE in modes else modes[0]


def config_label(cfg: dict[str, Any]) -> str:
    base = f"{cfg['mode']} / {cfg['reader']}"
    return base if cfg["setting"] == "open" else f"{cfg['setting']}: {base}"
