"""Scores from raw results: retrieval metrics per mode (document and passage level) and answer
metrics per question and per configuration (thresholded SQuAD 2.0 scores, groups, failures).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .datasets import GoldItem
from .metrics import (
    abstention_scores, best_thresholds, calibration_bins, citation_accurate, evidence_contains, exact_match,
    expected_calibration_error, f1_score, latency_summary, max_over_golds, retrieval_metrics, squad_v2_scores,
    threshold_curve,
)
from .plan import CALIBRATION_BINS, CORRECT_DEFINITION, CORRECT_F1, RETRIEVAL_KS, THRESHOLDS, WORST
from ..schema import Answer, Chunk


@dataclass
class RetrievalRun:
    """Ranked chunk ids and the document ranking they imply, per question id, for one mode."""

    mode: str
    chunks: dict[str, list[str]]
    docs: dict[str, list[str]]


def doc_qrels(items: Sequence[GoldItem]) -> dict[str, set[str]]:
    """Relevant documents per answerable question: its gold doc ids."""
    return {it.id: set(it.doc_ids) for it in items if it.answerable}


def passage_qrels(items: Sequence[GoldItem], chunks: Sequence[Chunk]) -> dict[str, set[str]]:
    """Relevant chunks per answerable question: chunks of a gold doc whose normalised text holds a gold answer."""
    by_doc: dict[str, list[Chunk]] = defaultdict(list)
    for c in chunks:
        by_doc[c.doc_id].append(c)
    return {it.id: {c.chunk_id for d in it.doc_ids for c in by_doc.get(d, ()) if evidence_contains(c.text, it.answers)}
            for it in items if it.answerable}


def retrieval_scores(run: RetrievalRun, docs_rel: dict[str, set[str]],
                     passages_rel: dict[str, set[str]]) -> dict[str, dict[str, float]]:
    """Document- and passage-level hit/recall/MRR/nDCG@1..10 for one mode (``retrieval_metrics``)."""
    return {"doc": retrieval_metrics(run.docs, docs_rel, ks=RETRIEVAL_KS),
            "passage": retrieval_metrics(run.chunks, passages_rel, ks=RETRIEVAL_KS)}


def first_rank(ranked: Sequence[str], relevant: set[str]) -> int | None:
    """1-based rank of the first relevant id, or None when none was retrieved."""
    return next((i for i, x in enumerate(ranked, 1) if x in relevant), None)


def thresholded(answer: Answer, threshold: float) -> str | None:
    """The answer text if its raw score reaches ``threshold``, else None (abstain)."""
    if answer.text is None or raw_score(answer) < threshold:
        return None
    return answer.text


def raw_score(answer: Answer) -> float:
    """The answer's confidence in [0, 1]; 0.0 when the reader found nothing (``text is None``)."""
    return 0.0 if answer.text is None else min(1.0, max(0.0, float(answer.score)))


def question_row(it: GoldItem, ans: Answer, threshold: float, config: dict[str, str],
                 ranks: dict[str, int | None]) -> dict[str, Any]:
    """The per-question record of report.json for one (setting, mode, reader)."""
    pred = thresholded(ans, threshold)
    golds = list(it.answers)
    raw_f1 = max_over_golds(f1_score, ans.text, golds)
    cited = ans.citations[0].text if ans.citations and ans.text is not None else None
    return {
        "id": it.id, "question": it.question, "type": it.type, "split": it.split,
        "answerable": it.answerable, "unanswerable_kind": it.unanswerable_kind, "paraphrase": it.paraphrase,
        **config,
        "prediction": ans.text, "score": raw_score(ans), "thresholded": pred, "gold": golds,
        "gold_doc_ids": list(it.doc_ids),
        "em": max_over_golds(exact_match, pred, golds), "f1": max_over_golds(f1_score, pred, golds),
        "raw_em": max_over_golds(exact_match, ans.text, golds), "raw_f1": raw_f1,
        "correct": bool(ans.text is not None and raw_f1 >= CORRECT_F1),
        "evidence": ans.evidence.text if ans.evidence and ans.text is not None else None,
        "evidence_contains": bool(pred is not None and it.answerable and ans.evidence
                                  and evidence_contains(ans.evidence.text, golds)),
        "evidence_contains_raw": bool(ans.text is not None and it.answerable and ans.evidence
                                      and evidence_contains(ans.evidence.text, golds)),
        "citation_doc_ids": list(dict.fromkeys(c.doc_id for c in ans.citations)) if ans.text is not None else [],
        "citation_accurate": bool(pred is not None and citation_accurate(ans.doc_id, cited, it.doc_ids, golds)),
        **ranks,
    }


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


def answer_metrics(rows: Sequence[dict[str, Any]], threshold: float,
                   latencies: Sequence[float]) -> dict[str, Any]:
    """Every answer metric of one (setting, mode, reader) from its question rows."""
    golds = {r["id"]: r["gold"] for r in rows}
    raw = {r["id"]: r["prediction"] for r in rows}
    scores = {r["id"]: r["score"] for r in rows}
    has = [r for r in rows if r["answerable"]]
    no = [r for r in rows if not r["answerable"]]
    answered_has = [r for r in has if r["thresholded"] is not None]
    with_pred = [r for r in rows if r["prediction"] is not None]
    cal_scores, cal_correct = [r["score"] for r in with_pred], [float(r["correct"]) for r in with_pred]
    curve = threshold_curve(raw, scores, golds, THRESHOLDS)
    return {
        "threshold": threshold,
        "squad": squad_v2_scores({r["id"]: r["thresholded"] for r in rows}, golds),
        "raw_squad": squad_v2_scores(raw, golds),
        "best_thresholds": best_thresholds(raw, scores, golds),
        "threshold_curve": curve,
        "evidence_contains": _mean(float(r["evidence_contains"]) for r in has),
        "evidence_contains_raw": _mean(float(r["evidence_contains_raw"]) for r in has),
        "citation_accuracy": _mean(float(r["citation_accurate"]) for r in answered_has),
        "citation_answered": len(answered_has),
        "abstention": abstention_scores({r["id"]: r["thresholded"] is None for r in rows},
                                        {r["id"]: r["answerable"] for r in rows}),
        "noans_acc": _mean(float(r["thresholded"] is None) for r in no),
        "coverage": _mean(float(r["thresholded"] is not None) for r in rows),
        "latency": latency_summary(latencies),
        "calibration": {"bins": calibration_bins(cal_scores, cal_correct, CALIBRATION_BINS),
                        "ece": expected_calibration_error(cal_scores, cal_correct, CALIBRATION_BINS),
                        "n": len(with_pred), "correct": CORRECT_DEFINITION},
    }


def group_table(rows: Sequence[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """EM, F1 (thresholded), evidence containment and counts per value of ``row[key]``."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[str(r[key])].append(r)
    out = {}
    for name in sorted(groups):
        g = groups[name]
        has = [r for r in g if r["answerable"]]
        no = [r for r in g if not r["answerable"]]
        out[name] = {"count": len(g), "answerable": len(has), "em": _mean(r["em"] for r in g),
                     "f1": _mean(r["f1"] for r in g), "hasans_f1": _mean(r["f1"] for r in has),
                     "evidence_contains": _mean(float(r["evidence_contains"]) for r in has),
                     "noans_acc": _mean(float(r["thresholded"] is None) for r in no) if no else None}
    return out


def kind_table(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """NoAns accuracy (fraction abstained on) per unanswerable kind."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if not r["answerable"]:
            groups[r["unanswerable_kind"] or "unspecified"].append(r)
    return {k: {"count": len(g), "noans_acc": _mean(float(r["thresholded"] is None) for r in g),
                "answered": sum(r["thresholded"] is not None for r in g)} for k, g in sorted(groups.items())}


def worst_failures(rows: Sequence[dict[str, Any]], n: int = WORST) -> list[dict[str, Any]]:
    """The ``n`` worst questions: lowest F1 first, the most confident mistakes first among equals."""
    wrong = [r for r in rows if r["f1"] < 1.0]
    return sorted(wrong, key=lambda r: (r["f1"], -r["score"], r["id"]))[:n]
