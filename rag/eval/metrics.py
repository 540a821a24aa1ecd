"""Evaluation metrics: SQuAD 2.0 answer scores, retrieval, citations, abstention, latency, calibration.

Pure functions over plain dicts and lists; nothing is read from disk and nothing is configured
globally. Conventions shared by every function here:

* A prediction of ``None`` is an abstention and is scored exactly like ``""``; so is any
  prediction that normalises to the empty string (e.g. ``"the"``), as in the official script.
* A gold list ``[]`` means the question is unanswerable. Gold strings that normalise to the empty
  string are dropped first (the official script does the same), so ``["", "."]`` is also
  unanswerable.
* Every score is a fraction in 0..1, not a percentage in 0..100 as the official script prints.
* A ratio whose denominator is zero is reported as ``0.0`` (never NaN), with the counts alongside
  so a caller can tell "0 of 0" from "0 of 10".
"""
from __future__ import annotations

import math
import re
import string
import functools
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence, Set

import numpy as np

from ..errors import InputError

Relevant = Set[str] | Mapping[str, float]

_ASCII_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_CHAR_MAP = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",  # ‘ ’ ‚ ‛
    "\u201c": '"', "\u201d": '"', "\u201e": '"',  # “ ” „
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2012": "-",  # – — − ‒
    "\u00a0": " ",  # no-break space
})


# --------------------------------------------------------------------------------------------
# SQuAD 2.0 answer scores
# --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=65536)
def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


# Every punctuation character matches (P* is never \w, except connector punctuation such as "_"):
# strings without a match skip the per-character pass; _is_punct decides for the rest.
_PUNCT_RE = re.compile(r"[^\w\s]|[_\u203f\u2040\u2054]")


def normalize_answer(s: str | None) -> str:
    """SQuAD 2.0 answer normalisation, made Unicode-aware.

    Steps: NFKC; curly quotes to ``'``/``"``, en/em/figure dashes and minus sign to ``-``, no-break
    space to space; lower-case; delete punctuation (ASCII ``string.punctuation`` as in the official
    script, plus every Unicode category ``P*`` character); replace the articles a/an/the by a
    space; collapse whitespace. Punctuation is deleted, not replaced by a space, exactly as the
    official script does: ``"2019–2020"`` becomes ``"20192020"``, ``"Russia’s"`` ``"russias"``.
    ``None`` gives ``""``.
    """
    if not s:
        return ""
    text = unicodedata.normalize("NFKC", s).translate(_CHAR_MAP).lower()
    if _PUNCT_RE.search(text):  # most spans hold no punctuation at all: skip the per-character pass
        text = "".join(ch for ch in text if not _is_punct(ch))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def get_tokens(s: str | None) -> list[str]:
    """The whitespace tokens of ``normalize_answer(s)``; ``[]`` for ``None`` or an empty answer."""
    if not s:
        return []
    return normalize_answer(s).split()


def exact_match(pred: str | None, gold: str | None) -> int:
    """1 if the normalised prediction equals the normalised gold, else 0.

    Two empty strings (an abstention on an unanswerable question) match: 1.
    """
    return int(normalize_answer(gold) == normalize_answer(pred))


def f1_score(pred: str | None, gold: str | None) -> float:
    """Token-level F1 between prediction and gold (bag of normalised tokens), as in SQuAD 2.0.

    No-answer convention: if either side has no tokens the score is 1.0 when both are empty
    (correct abstention) and 0.0 otherwise.
    """
    gold_toks = get_tokens(gold)
    pred_toks = get_tokens(pred)
    if not gold_toks or not pred_toks:
        return float(gold_toks == pred_toks)
    num_same = sum((Counter(gold_toks) & Counter(pred_toks)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_toks)
    recall = num_same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def _usable_golds(golds: Iterable[str]) -> list[str]:
    """Golds that survive normalisation, or ``[""]`` when none do (the question is unanswerable)."""
    kept = [g for g in golds if normalize_answer(g)]
    return kept or [""]


def max_over_golds(fn: Callable[[str, str], float], pred: str | None, golds: Sequence[str]) -> float:
    """The best ``fn(pred, gold)`` over the gold answers, as SQuAD scores a question.

    ``golds == []`` (or only golds that normalise to empty) means unanswerable: the prediction is
    compared with ``""``. ``pred=None`` is an abstention, compared as ``""``.
    """
    pred_text = pred or ""
    return max(fn(pred_text, g) for g in _usable_golds(golds))


def _has_answer(golds: Sequence[str]) -> bool:
    return _usable_golds(golds) != [""]


def _abstains(pred: str | None) -> bool:
    return not normalize_answer(pred)


def _raw_scores(preds: Mapping[str, str | None],
                golds: Mapping[str, Sequence[str]]) -> tuple[dict[str, float], dict[str, float]]:
    missing = [q for q in golds if q not in preds]
    if missing:
        raise InputError(f"{len(missing)} question(s) have no prediction (e.g. {missing[:3]}); "
                         "pass None for an abstention")
    exact = {q: float(max_over_golds(exact_match, preds[q], golds[q])) for q in golds}
    f1 = {q: max_over_golds(f1_score, preds[q], golds[q]) for q in golds}
    return exact, f1


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


def squad_v2_scores(preds: Mapping[str, str | None], golds: Mapping[str, Sequence[str]]) -> dict:
    """Overall, answerable-only and unanswerable-only EM/F1, as the official evaluate-v2.0.py.

    ``preds`` maps question id to answer text or ``None`` (abstain); ``golds`` maps question id
    to its gold answers (``[]`` = unanswerable). The questions scored are the keys of ``golds``;
    extra predictions are ignored and a missing prediction raises ``InputError`` (pass ``None``
    to abstain). Returns ``exact``, ``f1``, ``total``, ``HasAns_exact``, ``HasAns_f1``,
    ``HasAns_total``, ``NoAns_exact``, ``NoAns_f1``, ``NoAns_total``. Scores are fractions in
    0..1 (the official script reports 0..100); an empty group scores 0.0 with total 0 (the
    official script leaves such keys out). No no-answer threshold is applied here: see
    ``best_thresholds`` and ``threshold_curve``.
    """
    exact, f1 = _raw_scores(preds, golds)
    has = [q for q in golds if _has_answer(golds[q])]
    no = [q for q in golds if not _has_answer(golds[q])]
    return {
        "exact": _mean(exact.values()), "f1": _mean(f1.values()), "total": len(golds),
        "HasAns_exact": _mean(exact[q] for q in has), "HasAns_f1": _mean(f1[q] for q in has),
        "HasAns_total": len(has),
        "NoAns_exact": _mean(exact[q] for q in no), "NoAns_f1": _mean(f1[q] for q in no),
        "NoAns_total": len(no),
    }


# --------------------------------------------------------------------------------------------
# Threshold sweeps
# --------------------------------------------------------------------------------------------

def _check_scores(scores: Mapping[str, float], golds: Mapping[str, Sequence[str]]) -> None:
    missing = [q for q in golds if q not in scores]
    if missing:
        raise InputError(f"{len(missing)} question(s) have no answer score (e.g. {missing[:3]})")


def best_threshold(preds: Mapping[str, str | None], scores: Mapping[str, float],
                   golds: Mapping[str, Sequence[str]], metric: str = "f1") -> tuple[float, float]:
    """The best attainable EM or F1 when abstaining below a confidence threshold, and that threshold.

    Port of the official ``find_best_thresh`` with the direction flipped: the official script
    takes no-answer probabilities and predicts empty when ``na_prob > thresh``; here ``scores``
    are answer confidences (higher = more likely answerable) and a question is abstained on when
    ``score < thresh``, i.e. answered when ``score >= thresh``. The sweep starts from "abstain on
    everything" (worth the number of unanswerable questions), switches questions to their
    prediction in decreasing score order, and keeps the first strict improvement; the threshold
    returned is the score of the last question switched on, or ``math.inf`` if abstaining on
    everything is best (the official script returns 0.0 there). Questions sharing a score are
    switched on together, because no threshold can separate them (the official script credits
    partial tie groups); with distinct scores the result equals the official one.

    ``metric`` is ``"f1"`` or ``"exact"``. The value is a fraction in 0..1 over all questions in
    ``golds``; returns ``(0.0, math.inf)`` when ``golds`` is empty.
    """
    if metric not in ("f1", "exact"):
        raise InputError(f"metric must be 'f1' or 'exact', got {metric!r}")
    _check_scores(scores, golds)
    exact, f1 = _raw_scores(preds, golds)
    raw = f1 if metric == "f1" else exact
    if not golds:
        return 0.0, math.inf
    cur = float(sum(1 for q in golds if not _has_answer(golds[q])))
    best, best_thresh = cur, math.inf
    order = sorted(golds, key=lambda q: -scores[q])
    for i, qid in enumerate(order):
        # Answerable: gain its raw score (it scored 0 while abstained). Unanswerable: lose the
        # point it earned by abstaining, unless the prediction is itself empty (raw score 1).
        cur += raw[qid] if _has_answer(golds[qid]) else raw[qid] - 1.0
        tie_continues = i + 1 < len(order) and scores[order[i + 1]] == scores[qid]
        if not tie_continues and cur > best:
            best, best_thresh = cur, float(scores[qid])
    return best / len(golds), best_thresh


def best_thresholds(preds: Mapping[str, str | None], scores: Mapping[str, float],
                    golds: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """``best_threshold`` for both metrics, keyed as the official script's ``find_all_best_thresh``.

    Keys ``best_exact``, ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh``; values in 0..1,
    thresholds on the answer-score scale (abstain when ``score < thresh``).
    """
    best_exact, exact_thresh = best_threshold(preds, scores, golds, metric="exact")
    best_f1, f1_thresh = best_threshold(preds, scores, golds, metric="f1")
    return {"best_exact": best_exact, "best_exact_thresh": exact_thresh,
            "best_f1": best_f1, "best_f1_thresh": f1_thresh}


def best_threshold_with_noans(preds: Mapping[str, str | None], scores: Mapping[str, float],
                              golds: Mapping[str, Sequence[str]], min_noans: float) -> dict[str, float]:
    """The best-F1 threshold among those that abstain on at least ``min_noans`` of the unanswerable
    questions: the SQuAD best-threshold sweep with an abstention floor.

    Candidates are every distinct score and ``math.inf`` (abstain on everything, which always
    meets the floor). Among the thresholds whose NoAns accuracy (the fraction of unanswerable
    questions given no answer) is ``>= min_noans``, the one with the highest overall F1 wins;
    ties go to the highest threshold, as in ``best_threshold`` (so ``min_noans=0`` gives its
    answer: the official sweep keeps the first strict improvement from the top). Returns ``{"f1", "thresh", "no_ans_acc",
    "has_ans_f1", "coverage"}`` (fractions in 0..1). With no unanswerable question in ``golds``
    every threshold meets the floor, and this is ``best_threshold``'s answer.
    """
    if not 0.0 <= min_noans <= 1.0:
        raise InputError(f"min_noans must be a fraction in 0..1, got {min_noans!r}")
    _check_scores(scores, golds)
    candidates = sorted({float(scores[q]) for q in golds}) + [math.inf]
    any_no_ans = any(not _has_answer(golds[q]) for q in golds)
    best = None
    for row in threshold_curve(preds, scores, golds, candidates):
        if any_no_ans and row["no_ans_acc"] < min_noans - 1e-12:
            continue
        if best is None or row["f1"] >= best["f1"] - 1e-12:
            best = row
    return {"f1": best["f1"], "thresh": best["threshold"], "no_ans_acc": best["no_ans_acc"],
            "has_ans_f1": best["has_ans_f1"], "coverage": best["coverage"]}


def threshold_curve(preds: Mapping[str, str | None], scores: Mapping[str, float],
                    golds: Mapping[str, Sequence[str]],
                    thresholds: Iterable[float]) -> list[dict[str, float]]:
    """Scores at each threshold, for plotting F1 and coverage against the abstention threshold.

    At threshold ``t`` a question keeps its prediction when ``scores[qid] >= t`` and is abstained
    on otherwise. Each row: ``threshold``; ``f1`` and ``exact`` over all questions;
    ``coverage``, the fraction of all questions given a non-empty answer; ``has_ans_f1``, mean
    F1 over answerable questions; ``no_ans_acc``, the fraction of unanswerable questions
    abstained on. Fractions in 0..1, 0.0 for an empty group. Rows follow ``thresholds`` order.
    """
    _check_scores(scores, golds)
    exact, f1 = _raw_scores(preds, golds)
    has = {q: _has_answer(golds[q]) for q in golds}
    nonempty = {q: not _abstains(preds[q]) for q in golds}
    # An abstention scores 0 on an answerable question and 1 on an unanswerable one.
    abstain_score = {q: 0.0 if has[q] else 1.0 for q in golds}
    no_ans = [q for q in golds if not has[q]]
    rows = []
    for t in thresholds:
        keep = {q: scores[q] >= t for q in golds}
        f1_t = {q: f1[q] if keep[q] else abstain_score[q] for q in golds}
        exact_t = {q: exact[q] if keep[q] else abstain_score[q] for q in golds}
        answered = {q: keep[q] and nonempty[q] for q in golds}
        rows.append({
            "threshold": float(t),
            "f1": _mean(f1_t.values()),
            "exact": _mean(exact_t.values()),
            "coverage": _mean(float(answered[q]) for q in golds),
            "has_ans_f1": _mean(f1_t[q] for q in golds if has[q]),
            "no_ans_acc": _mean(float(not answered[q]) for q in no_ans),
        })
    return rows


# --------------------------------------------------------------------------------------------
# Evidence and citations
# --------------------------------------------------------------------------------------------

def evidence_contains(evidence_text: str | None, golds: Sequence[str]) -> bool:
    """True if some gold answer occurs in the evidence text, both normalised, on token boundaries.

    Containment is of whole normalised tokens (``"1990"`` does not contain ``"99"``). False for
    ``None``/empty evidence and for unanswerable questions (``golds == []``).
    """
    evidence = normalize_answer(evidence_text)
    if not evidence:
        return False
    padded = f" {evidence} "
    return any(f" {g} " in padded for g in (normalize_answer(x) for x in golds) if g)


def citation_accurate(answer_doc_id: str | None, answer_passage_text: str | None,
                      gold_doc_ids: Iterable[str], golds: Sequence[str]) -> bool:
    """True if the cited document is a gold document and the cited passage contains a gold answer.

    Containment as in ``evidence_contains``. False when nothing is cited (``None``) or the
    question is unanswerable.
    """
    if answer_doc_id is None or answer_doc_id not in set(gold_doc_ids):
        return False
    return evidence_contains(answer_passage_text, golds)


# --------------------------------------------------------------------------------------------
# Retrieval
# --------------------------------------------------------------------------------------------
# Document-level vs passage-level evaluation is only a matter of which ids are passed: document
# ids, or chunk ids (e.g. the chunks whose text contains a gold answer). Rankings are
# de-duplicated (first occurrence kept), so a chunk ranking mapped to document ids can be passed
# as is and k then counts distinct documents.

def _gains(relevant: Relevant) -> dict[str, float]:
    """id -> gain for the relevant ids (gain > 0): 1.0 each for a set (or any iterable), the dict's gains."""
    if isinstance(relevant, Mapping):
        gains = {k: float(v) for k, v in relevant.items()}
        negative = [k for k, v in gains.items() if v < 0]
        if negative:
            raise InputError(f"relevance gains must be >= 0, got negative gains for {negative[:3]}")
        return {k: v for k, v in gains.items() if v > 0}
    return {k: 1.0 for k in relevant}


def _top_k(ranked: Iterable[str], k: int | None) -> list[str]:
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise InputError(f"k must be a positive integer or None, got {k!r}")
    seen: dict[str, None] = {}
    for item in ranked:
        if k is not None and len(seen) >= k:
            break
        seen.setdefault(item, None)
    return list(seen)


def hit_at_k(ranked: Sequence[str], relevant: Relevant, k: int) -> float:
    """1.0 if any relevant id is in the top k, else 0.0 (the usual one-relevant-suffices measure)."""
    rel = _gains(relevant)
    return float(any(item in rel for item in _top_k(ranked, k)))


def recall_at_k(ranked: Sequence[str], relevant: Relevant, k: int) -> float:
    """Fraction of the relevant ids found in the top k; 0.0 when there are no relevant ids."""
    rel = _gains(relevant)
    if not rel:
        return 0.0
    return sum(1 for item in _top_k(ranked, k) if item in rel) / len(rel)


def reciprocal_rank(ranked: Sequence[str], relevant: Relevant, k: int | None = None) -> float:
    """1/rank of the first relevant id (ranks from 1) within the top k (all if None), else 0.0."""
    rel = _gains(relevant)
    for rank, item in enumerate(_top_k(ranked, k), start=1):
        if item in rel:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Relevant, k: int = 10) -> float:
    """Normalised discounted cumulative gain of the top k.

    ``DCG@k = sum over ranks i=1..k of gain(i) / log2(i + 1)``; gains are 1 for ids in a set
    ``relevant``, or ``relevant[id]`` when it is a dict id -> gain (graded; gains must be >= 0).
    The ideal DCG places the relevant gains in decreasing order in the first k ranks. 0.0 when
    there are no relevant ids.
    """
    rel = _gains(relevant)
    top = _top_k(ranked, k)
    dcg = sum(rel.get(item, 0.0) / math.log2(i + 2) for i, item in enumerate(top))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def retrieval_metrics(run: Mapping[str, Sequence[str]],
                      qrels: Mapping[str, Relevant],
                      ks: Sequence[int] = (1, 3, 5, 10)) -> dict[str, float]:
    """Mean hit@k, recall@k, mrr@k and ndcg@k over queries, in the sentence-transformers IR style.

    ``run`` maps query id to its ranked ids (best first); ``qrels`` maps query id to its relevant
    ids, a set or a dict id -> graded gain (ids with gain 0 are not relevant; graded gains only
    change nDCG). Flat keys ``"hit@k"``, ``"recall@k"``, ``"mrr@k"``, ``"ndcg@k"`` for each k in
    ``ks``, plus ``"queries"``: the number of queries averaged over. Only queries in ``qrels``
    with at least one relevant id count; a counted query missing from ``run`` is scored as an
    empty ranking (0 everywhere); run queries without qrels are ignored. All means are 0.0 when
    no query counts.
    """
    qids = [q for q in qrels if _gains(qrels[q])]
    out: dict[str, float] = {}
    for k in ks:
        per_q = [(hit_at_k(run.get(q, []), qrels[q], k), recall_at_k(run.get(q, []), qrels[q], k),
                  reciprocal_rank(run.get(q, []), qrels[q], k), ndcg_at_k(run.get(q, []), qrels[q], k))
                 for q in qids]
        for j, name in enumerate(("hit", "recall", "mrr", "ndcg")):
            out[f"{name}@{k}"] = _mean(row[j] for row in per_q)
    out["queries"] = len(qids)
    return out


# --------------------------------------------------------------------------------------------
# Abstention, latency, calibration
# --------------------------------------------------------------------------------------------

def abstention_scores(abstained: Mapping[str, bool], answerable: Mapping[str, bool]) -> dict:
    """Precision, recall and F1 of abstaining, treating "unanswerable" as the positive class.

    Over the question ids in ``answerable`` (each must be in ``abstained``): ``precision`` = of the
    abstentions, the fraction on unanswerable questions; ``recall`` = of the unanswerable
    questions, the fraction abstained on; ``f1`` their harmonic mean. A 0/0 ratio is 0.0 (e.g.
    precision when the system never abstains); the counts ``total``, ``abstained``,
    ``unanswerable``, ``correct_abstentions`` (abstained and unanswerable) and
    ``wrong_abstentions`` (abstained but answerable) tell those cases apart.
    """
    missing = [q for q in answerable if q not in abstained]
    if missing:
        raise InputError(f"{len(missing)} question(s) have no abstention flag (e.g. {missing[:3]})")
    n_abst = sum(1 for q in answerable if abstained[q])
    n_unans = sum(1 for q in answerable if not answerable[q])
    tp = sum(1 for q in answerable if abstained[q] and not answerable[q])
    precision = tp / n_abst if n_abst else 0.0
    recall = tp / n_unans if n_unans else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "total": len(answerable),
            "abstained": n_abst, "unanswerable": n_unans,
            "correct_abstentions": tp, "wrong_abstentions": n_abst - tp}


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Median, 95th percentile and mean of latencies given in seconds, reported in milliseconds.

    Keys ``p50_ms``, ``p95_ms``, ``mean_ms``, ``n``. Percentiles use linear interpolation between
    order statistics (``numpy.percentile``'s default). With no samples the three values are NaN
    and ``n`` is 0.
    """
    values = np.asarray(list(seconds), dtype=float)
    if values.size == 0:
        return {"p50_ms": math.nan, "p95_ms": math.nan, "mean_ms": math.nan, "n": 0}
    ms = values * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "n": int(values.size)}


def calibration_bins(scores: Sequence[float], correct: Sequence[float],
                     n_bins: int = 10) -> list[dict]:
    """Equal-width confidence bins over [0, 1] for a reliability diagram.

    Bin i covers ``[i/n_bins, (i+1)/n_bins)``; the last bin also takes 1.0. ``correct`` holds
    bools or numbers in 0..1 (e.g. per-question F1), averaged as the bin's accuracy. Returns all
    ``n_bins`` bins in order, each ``{lo, hi, count, mean_score, accuracy}``; an empty bin has
    count 0 and ``mean_score``/``accuracy`` None. Scores outside [0, 1] raise ``InputError``.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise InputError(f"n_bins must be a positive integer, got {n_bins!r}")
    s = np.asarray(list(scores), dtype=float)
    c = np.asarray(list(correct), dtype=float)
    if s.shape != c.shape:
        raise InputError(f"scores and correct differ in length: {s.size} vs {c.size}")
    if s.size and (not np.all(np.isfinite(s)) or s.min() < 0.0 or s.max() > 1.0):
        raise InputError("calibration scores must be finite and within [0, 1]")
    idx = np.minimum((s * n_bins).astype(int), n_bins - 1)
    bins = []
    for i in range(n_bins):
        mask = idx == i
        count = int(mask.sum())
        bins.append({"lo": i / n_bins, "hi": (i + 1) / n_bins, "count": count,
                     "mean_score": float(s[mask].mean()) if count else None,
                     "accuracy": float(c[mask].mean()) if count else None})
    return bins


def expected_calibration_error(scores: Sequence[float], correct: Sequence[float],
                               n_bins: int = 10) -> float:
    """ECE: sum over bins of (bin count / N) * |accuracy - mean score|, with ``calibration_bins``.

    0.0 when there are no samples.
    """
    bins = calibration_bins(scores, correct, n_bins)
    n = sum(b["count"] for b in bins)
    if n == 0:
        return 0.0
    return sum(b["count"] / n * abs(b["accuracy"] - b["mean_score"]) for b in bins if b["count"])
