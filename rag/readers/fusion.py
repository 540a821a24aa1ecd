"""The fused reader: neural spans, re-scored with the feature reader's signals.

The neural reader proposes spans (it finds boundaries far better than rules). Each span is then
described by a few signals, and a small logistic model turns them into one calibrated score:

  neural_prob      the span's probability from one softmax over all windows and the no-answer
  neural_margin    its best logit minus the no-answer logit (squashed with tanh)
  neural_noans     the neural no-answer probability for the question
  feature_score    the feature reader's score for the same (or the most overlapping) span
  type_match / type_clash / sent_overlap / sent_cos / sent_rank   from that feature candidate
  passage_rank     where retrieval put the span's passage
  support          how many other documents propose the same normalised answer

Weights, calibration and threshold are fitted by ``python -m rag.train.fusion``
(on the held-out SQuAD dev articles and the gold dev split) and live in
``rag/models/<name>_settings.json`` ("fused": MPNet spans, "fast": MiniLM spans).
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from ..schema import Passage
from .base import ReaderOutput, SpanCandidate

FUSED_FEATURES = ("bias", "neural_prob", "neural_margin", "neural_noans", "feature_score", "has_feature",
                  "type_match", "type_clash", "sent_overlap", "sent_cos", "sent_rank", "passage_rank",
                  "support")
DEFAULT_FUSED_WEIGHTS = {"bias": -2.0, "neural_prob": 3.0, "neural_margin": 1.5, "neural_noans": -1.5,
                         "feature_score": 1.5, "has_feature": 0.2, "type_match": 0.8, "type_clash": -0.8,
                         "sent_overlap": 0.8, "sent_cos": 0.8, "sent_rank": 0.5, "passage_rank": 0.3,
                         "support": 0.5}


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    if inter <= 0:
        return 0.0
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


class FusedReader:
    """Neural candidates scored with neural and feature signals by a fitted logistic model."""

    name = "fast"
    uses_vectors = True

    def __init__(self, index=None, embedder=None, *, neural=None, features=None,
                 weights: dict[str, float] | None = None, top_n: int = 20, name: str | None = None) -> None:
        """``neural``: the span proposer (default: the shipped MiniLM reader); ``name`` keys the
        shipped weights and calibration (``rag/models/<name>_settings.json``): "fused" for the
        MPNet-based reader, "fast" for the MiniLM-based one."""
        if name:
            self.name = name
        from .settings import load_reader_settings
        from .features import FeatureReader
        from .neural import NeuralReader

        self.neural = neural or NeuralReader()
        self.features = features or FeatureReader(index, embedder)
        self.features.top_n = 400  # every candidate: fused spans look up their closest one
        settings = load_reader_settings(self.name)
        self.weights = {**DEFAULT_FUSED_WEIGHTS, **(weights or settings.get("weights") or {})}
        self.top_n = top_n

    def signals(self, question: str, passages: Sequence[Passage], qvec: np.ndarray | None = None
                ) -> list[tuple[SpanCandidate, dict[str, float], float]]:
        """Every neural candidate with its fused features and answer kind (for scoring and fitting)."""
        passages = list(passages)
        n_out = self.neural.read(question, passages)
        f_out = self.features.read(question, passages, qvec=qvec)
        by_doc: dict[str, list[SpanCandidate]] = defaultdict(list)
        for fc in f_out.candidates:
            by_doc[fc.doc_id].append(fc)
        rank_of = {(p.doc_id, p.start): r for r, p in enumerate(passages)}
        from ..eval.metrics import normalize_answer

        docs_for: dict[str, set[str]] = defaultdict(set)
        for c in n_out.candidates:
            docs_for[normalize_answer(c.text)].add(c.doc_id)
        out = []
        for c in n_out.candidates:
            best, best_ov = None, 0.0
            for fc in by_doc.get(c.doc_id, ()):
                ov = _overlap((c.start, c.end), (fc.start, fc.end))
                if ov > best_ov:
                    best, best_ov = fc, ov
            ff = best.features if best is not None else {}
            margin = c.features.get("span_logit", 0.0) - c.features.get("null_logit", 0.0)
            x = {
                "bias": 1.0,
                "neural_prob": c.score,
                "neural_margin": math.tanh(margin / 5.0),
                "neural_noans": n_out.no_answer,
                "feature_score": best.score * best_ov if best is not None else 0.0,
                "has_feature": 1.0 if best is not None and best_ov >= 0.5 else 0.0,
                "type_match": ff.get("type_match", 0.0) if best_ov >= 0.5 else 0.0,
                "type_clash": ff.get("type_clash", 0.0) if best_ov >= 0.5 else 0.0,
                "sent_overlap": ff.get("sent_overlap", 0.0),
                "sent_cos": ff.get("sent_cos", 0.0),
                "sent_rank": ff.get("sent_rank", 0.0),
                "passage_rank": 1.0 / (1.0 + rank_of.get((c.passage.doc_id, c.passage.start), len(passages))),
                "support": math.log1p(len(docs_for[normalize_answer(c.text)]) - 1),
            }
            out.append((c, x, ff.get("kind", 0.0) if best_ov >= 0.5 else 0.0))
        return out

    def read(self, question: str, passages: Sequence[Passage], qvec: np.ndarray | None = None) -> ReaderOutput:
        scored = []
        for c, x, kind in self.signals(question, passages, qvec):
            z = sum(self.weights.get(k, 0.0) * v for k, v in x.items())
            s = 1.0 / (1.0 + math.exp(-z))
            feats = {**x, "kind": kind}
            scored.append(SpanCandidate(c.doc_id, c.start, c.end, c.text, s, c.passage, feats))
        scored.sort(key=lambda c: -c.score)
        scored = scored[: self.top_n]
        return ReaderOutput(scored, 1.0 - (scored[0].score if scored else 0.0))
