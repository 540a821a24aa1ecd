"""Hand-checked values for rag.eval.metrics; each expected number is worked out in a comment."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest

from rag.errors import InputError
from rag.eval.metrics import (
    abstention_scores,
    best_threshold,
    best_threshold_with_noans,
    best_thresholds,
    calibration_bins,
    citation_accurate,
    evidence_contains,
    exact_match,
    expected_calibration_error,
    f1_score,
    get_tokens,
    hit_at_k,
    latency_summary,
    max_over_golds,
    ndcg_at_k,
    normalize_answer,
    recall_at_k,
    reciprocal_rank,
    retrieval_metrics,
    squad_v2_scores,
    threshold_curve,
)

approx = pytest.approx


# ---------------------------------------------------------------- normalisation and EM/F1

@pytest.mark.parametrize("text, expected", [
    ("The Norman  Conquest!", "norman conquest"),       # official: lower, punct, article, spaces
    ("an apple a day", "apple day"),                    # all three articles go
    ("theatre", "theatre"),                             # ... only as whole words
    ("A", ""),
    ("$5.00", "500"),                                   # ASCII punctuation deleted, not spaced
    ("2019–2020", "20192020"),                          # en dash is punctuation
    ("−5", "5"),                                        # U+2212 minus (a symbol) mapped to '-'
    ("Russia’s", "russias"),                            # curly apostrophe
    ("«Bonjour» ¿Qué?", "bonjour qué"),                 # Unicode P* punctuation
    ("ﬁve ＡＢＣ", "five abc"),                          # NFKC: ligature, full-width
    ("New\u00a0York", "new york"),                      # no-break space
    ("€5", "€5"),                                       # currency sign is S*, kept (as official)
    ("", ""),
    (None, ""),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_unicode_variants_match_ascii():
    assert exact_match("“Triumf”", '"Triumf"') == 1
    assert exact_match("2019–2020", "2019-2020") == 1
    assert exact_match("2019—2020", "2019‒2020") == 1
    assert exact_match("Russia’s", "Russia's") == 1
    assert f1_score("Russia’s army", "Russia's") == approx(2 * 0.5 * 1 / 1.5)
    assert exact_match("Triumf", "Triumph") == 0


def test_get_tokens():
    assert get_tokens("The Denver Broncos!") == ["denver", "broncos"]
    assert get_tokens("") == []
    assert get_tokens(None) == []
    assert get_tokens("the") == []


def test_exact_match_and_f1_official_examples():
    assert exact_match("the Denver Broncos", "Denver Broncos") == 1
    assert f1_score("the Denver Broncos", "Denver Broncos") == 1.0
    # pred tokens [denver, broncos, football, team], gold [denver, broncos]: common 2
    # precision 2/4, recall 2/2, F1 = 2*0.5*1/(0.5+1) = 0.6667
    assert exact_match("Denver Broncos football team", "Denver Broncos") == 0
    assert f1_score("Denver Broncos football team", "Denver Broncos") == approx(2 / 3)
    # bag of tokens: pred [x, y, y], gold [y, y, z]: common y x2 -> P = R = 2/3 -> F1 = 2/3
    assert f1_score("x y y", "y y z") == approx(2 / 3)
    assert f1_score("Carolina Panthers", "Denver Broncos") == 0.0


def test_no_answer_conventions():
    assert exact_match("", "") == 1
    assert f1_score("", "") == 1.0
    assert f1_score(None, "") == 1.0
    assert f1_score("Paris", "") == 0.0          # answered an unanswerable question
    assert f1_score("", "Paris") == 0.0          # abstained on an answerable one
    assert exact_match("Paris", "") == 0
    assert exact_match(None, "Paris") == 0
    assert f1_score("the", "") == 1.0            # normalises to empty: an abstention


def test_max_over_golds():
    golds = ["Denver Broncos", "Broncos"]
    assert max_over_golds(exact_match, "the Broncos", golds) == 1
    # "Denver" vs "Denver Broncos": P 1, R 1/2 -> 2/3; vs "the Broncos team": no overlap -> 0
    assert max_over_golds(f1_score, "Denver", ["the Broncos team", "Denver Broncos"]) == approx(2 / 3)
    # [] = unanswerable: compared with ""
    assert max_over_golds(f1_score, None, []) == 1.0
    assert max_over_golds(exact_match, "", []) == 1
    assert max_over_golds(f1_score, "Paris", []) == 0.0
    # golds that normalise to empty are dropped -> still unanswerable
    assert max_over_golds(exact_match, None, ["", "."]) == 1
    # ... but if a real gold remains, an abstention is wrong
    assert max_over_golds(exact_match, None, ["", "Paris"]) == 0


# ---------------------------------------------------------------- squad_v2_scores

def test_squad_v2_scores_by_hand():
    golds = {
        "h1": ["Denver Broncos", "the Denver Broncos"],
        "h2": ["Santa Clara, California", "Levi's Stadium"],
        "n1": [],
        "n2": [],
    }
    preds = {
        "h1": "Denver Broncos football team",   # EM 0, F1 2/3
        "h2": "Levi’s Stadium",                 # EM 1, F1 1
        "n1": None,                             # correct abstention: 1, 1
        "n2": "Paris",                          # answered unanswerable: 0, 0
        "extra": "ignored",
    }
    s = squad_v2_scores(preds, golds)
    assert s["total"] == 4 and s["HasAns_total"] == 2 and s["NoAns_total"] == 2
    assert s["exact"] == approx((0 + 1 + 1 + 0) / 4)            # 0.5
    assert s["f1"] == approx((2 / 3 + 1 + 1 + 0) / 4)           # 2/3
    assert s["HasAns_exact"] == approx(0.5)
    assert s["HasAns_f1"] == approx((2 / 3 + 1) / 2)            # 5/6
    assert s["NoAns_exact"] == approx(0.5)
    assert s["NoAns_f1"] == approx(0.5)


def test_squad_v2_scores_missing_prediction_and_empty():
    with pytest.raises(InputError):
        squad_v2_scores({"a": "x"}, {"a": ["x"], "b": ["y"]})
    empty = squad_v2_scores({}, {})
    assert empty["total"] == 0 and empty["f1"] == 0.0 and empty["NoAns_total"] == 0


# ---------------------------------------------------------------- thresholds

# a: answerable, right (EM 1, F1 1)             score 0.9
# b: unanswerable, answered "x" (0, 0)          score 0.8
# c: answerable, partial (EM 0, F1 2/3)         score 0.7
# e: answerable, partial (EM 0, F1 2/3)         score 0.6
# d: unanswerable, answered "y" (0, 0)          score 0.3
SWEEP_GOLDS = {"a": ["Denver Broncos"], "b": [], "c": ["Denver Broncos"],
               "e": ["Santa Clara"], "d": []}
# partial: 4 predicted tokens, 2 gold, 2 shared -> P 1/2, R 1, F1 = 2*0.5*1/1.5 = 2/3
SWEEP_PREDS = {"a": "Denver Broncos", "b": "x", "c": "Denver Broncos football team",
               "e": "Santa Clara football stadium", "d": "y"}
SWEEP_SCORES = {"a": 0.9, "b": 0.8, "c": 0.7, "e": 0.6, "d": 0.3}


def test_best_threshold_by_hand():
    # Start: abstain on all -> 2 (the two unanswerables). Switch on in score order:
    # F1: a +1 -> 3 (best, 0.9); b -1 -> 2; c +2/3 -> 2.667; e +2/3 -> 3.333 (best, 0.6); d -1 -> 2.333
    assert best_threshold(SWEEP_PREDS, SWEEP_SCORES, SWEEP_GOLDS, "f1") == (approx((10 / 3) / 5), 0.6)
    # EM: a +1 -> 3 (best, 0.9); b -1 -> 2; c +0; e +0; d -1 -> 1
    assert best_threshold(SWEEP_PREDS, SWEEP_SCORES, SWEEP_GOLDS, "exact") == (approx(3 / 5), 0.9)
    assert best_thresholds(SWEEP_PREDS, SWEEP_SCORES, SWEEP_GOLDS) == {
        "best_exact": approx(0.6), "best_exact_thresh": 0.9,
        "best_f1": approx(2 / 3), "best_f1_thresh": 0.6,
    }


def test_best_threshold_value_is_attained_by_threshold_curve():
    value, thresh = best_threshold(SWEEP_PREDS, SWEEP_SCORES, SWEEP_GOLDS, "f1")
    (row,) = threshold_curve(SWEEP_PREDS, SWEEP_SCORES, SWEEP_GOLDS, [thresh])
    assert row["f1"] == approx(value)


def test_best_threshold_abstain_all_is_inf():
    # one unanswerable answered wrongly: abstaining scores 1/1, answering 0/1
    assert best_threshold({"q": "x"}, {"q": 0.5}, {"q": []}) == (1.0, math.inf)
    assert best_threshold({}, {}, {}) == (0.0, math.inf)


def test_best_threshold_ties_switch_on_together():
    # a (right, answerable) and b (wrong, unanswerable) share score 0.5. The official sweep would
    # credit a alone (2/2 at 0.5) though no threshold answers a without b. Together: 1 -> 1, no
    # strict gain, so abstain-all stays best: b right, a wrong = 1/2.
    golds, preds, scores = {"a": ["Paris"], "b": []}, {"a": "Paris", "b": "x"}, {"a": 0.5, "b": 0.5}
    assert best_threshold(preds, scores, golds, "exact") == (0.5, math.inf)


def test_best_threshold_empty_prediction_on_unanswerable_costs_nothing():
    # n has an empty prediction (raw 1): switching it on changes nothing; then a gains 1.
    golds, preds, scores = {"n": [], "a": ["Paris"]}, {"n": "", "a": "Paris"}, {"n": 0.9, "a": 0.4}
    assert best_threshold(preds, scores, golds, "f1") == (1.0, 0.4)


def test_best_threshold_bad_input():
    with pytest.raises(InputError):
        best_threshold(SWEEP_PREDS, SWEEP_SCORES, SWEEP_GOLDS, "recall")
    with pytest.raises(InputError):
        best_threshold(SWEEP_PREDS, {"a": 0.9}, SWEEP_GOLDS)


NOANS_GOLDS = {"q1": ["alpha"], "q2": [], "q3": ["beta"], "q4": ["gamma"], "q5": [], "q6": []}
NOANS_PREDS = {"q1": "alpha", "q2": "xray", "q3": "beta", "q4": "gamma", "q5": "yankee", "q6": "zulu"}
NOANS_SCORES = {"q1": 0.9, "q2": 0.8, "q3": 0.7, "q4": 0.6, "q5": 0.5, "q6": 0.1}


def test_best_threshold_with_noans_by_hand():
    # By threshold: 0.1 -> 3/6 (all answered); 0.5 -> 4/6; 0.6 -> 5/6, NoAns 2/3 (the plain best);
    # 0.7 -> 4/6; 0.8 -> 3/6; 0.9 -> 4/6, NoAns 1 (q2 abstained too); inf -> 3/6.
    assert best_threshold(NOANS_PREDS, NOANS_SCORES, NOANS_GOLDS) == (approx(5 / 6), 0.6)
    plain = best_threshold_with_noans(NOANS_PREDS, NOANS_SCORES, NOANS_GOLDS, 0.0)
    assert (plain["thresh"], plain["f1"], plain["no_ans_acc"]) == (0.6, approx(5 / 6), approx(2 / 3))
    floor = best_threshold_with_noans(NOANS_PREDS, NOANS_SCORES, NOANS_GOLDS, 0.85)
    assert floor == {"f1": approx(4 / 6), "thresh": 0.9, "no_ans_acc": 1.0, "has_ans_f1": approx(1 / 3),
                     "coverage": approx(1 / 6)}
    # a floor met by the plain best changes nothing
    assert best_threshold_with_noans(NOANS_PREDS, NOANS_SCORES, NOANS_GOLDS, 0.6)["thresh"] == 0.6


def test_best_threshold_with_noans_agrees_with_the_sweep_at_zero():
    # ties in F1 go to the higher threshold, as in the official sweep (SWEEP_*: 0.9 and 0.6 differ)
    value, thresh = best_threshold(SWEEP_PREDS, SWEEP_SCORES, SWEEP_GOLDS)
    got = best_threshold_with_noans(SWEEP_PREDS, SWEEP_SCORES, SWEEP_GOLDS, 0.0)
    assert (got["f1"], got["thresh"]) == (approx(value), thresh)
    tie = best_threshold_with_noans({"a": "alpha", "b": "xray", "c": "gamma"}, {"a": 0.9, "b": 0.5, "c": 0.4},
                                    {"a": ["alpha"], "b": [], "c": ["gamma"]}, 0.0)
    assert tie["thresh"] == 0.9  # 0.9 -> 2/3 and 0.4 -> 2/3: the higher one


def test_best_threshold_with_noans_edges():
    # only answerable questions: no floor to meet
    assert best_threshold_with_noans({"a": "alpha"}, {"a": 0.3}, {"a": ["alpha"]}, 0.99)["thresh"] == 0.3
    # a floor of 1 that only abstaining on everything meets
    assert best_threshold_with_noans({"q": "xray"}, {"q": 0.5}, {"q": []}, 1.0)["thresh"] == math.inf
    with pytest.raises(InputError, match="min_noans"):
        best_threshold_with_noans(NOANS_PREDS, NOANS_SCORES, NOANS_GOLDS, 85)


def test_threshold_curve_by_hand():
    hi, mid, lo = threshold_curve(SWEEP_PREDS, SWEEP_SCORES, SWEEP_GOLDS, [0.95, 0.6, 0.0])
    # 0.95: all abstain: F1 = EM = 2/5; nothing answered; has-ans F1 0; both no-ans abstained
    assert hi == {"threshold": 0.95, "f1": approx(0.4), "exact": approx(0.4), "coverage": 0.0,
                  "has_ans_f1": 0.0, "no_ans_acc": 1.0}
    # 0.6: a, b, c, e answered; d abstained. F1 = (1+0+2/3+2/3+1)/5 = 2/3; EM = (1+0+0+0+1)/5
    # has-ans F1 = (1+2/3+2/3)/3 = 7/9; no-ans: d abstained, b not -> 1/2
    assert mid == {"threshold": 0.6, "f1": approx(2 / 3), "exact": approx(0.4), "coverage": approx(0.8),
                   "has_ans_f1": approx(7 / 9), "no_ans_acc": 0.5}
    # 0.0: all answered. F1 = (1+0+2/3+2/3+0)/5 = 7/15; EM = 1/5
    assert lo == {"threshold": 0.0, "f1": approx(7 / 15), "exact": approx(0.2), "coverage": 1.0,
                  "has_ans_f1": approx(7 / 9), "no_ans_acc": 0.0}


def test_threshold_curve_empty_prediction_is_not_coverage():
    rows = threshold_curve({"q": None, "r": "Paris"}, {"q": 0.9, "r": 0.9}, {"q": [], "r": ["Paris"]}, [0.5])
    assert rows[0]["coverage"] == 0.5 and rows[0]["no_ans_acc"] == 1.0 and rows[0]["f1"] == 1.0


# ---------------------------------------------------------------- evidence and citations

def test_evidence_contains():
    sentence = "The Denver Broncos defeated the Carolina Panthers, 24–10."
    assert evidence_contains(sentence, ["Denver Broncos"])
    assert evidence_contains(sentence, ["Seattle", "the carolina panthers!"])
    assert evidence_contains(sentence, ["24-10"])                  # dash variants agree
    assert not evidence_contains(sentence, ["Seattle Seahawks"])
    assert not evidence_contains("Founded in 1990.", ["99"])     # whole tokens only
    assert evidence_contains("Russia’s army grew.", ["Russia's army"])
    assert not evidence_contains(sentence, [])                   # unanswerable
    assert not evidence_contains(None, ["Denver"])
    assert not evidence_contains(sentence, ["", "the"])          # golds empty after normalising


def test_citation_accurate():
    passage = "Super Bowl 50 was won by the Denver Broncos."
    assert citation_accurate("d1", passage, {"d1", "d2"}, ["Denver Broncos"])
    assert not citation_accurate("d3", passage, {"d1", "d2"}, ["Denver Broncos"])   # wrong doc
    assert not citation_accurate("d1", "Levi's Stadium hosted it.", ["d1"], ["Denver Broncos"])
    assert not citation_accurate(None, passage, ["d1"], ["Denver Broncos"])
    assert not citation_accurate("d1", passage, ["d1"], [])


# ---------------------------------------------------------------- retrieval

RANKED = ["d3", "d1", "d7", "d2", "d9"]
RELEVANT = {"d1", "d2", "d5"}
L3, L5 = math.log2(3), math.log2(5)


def test_hit_and_recall_at_k():
    assert hit_at_k(RANKED, RELEVANT, 1) == 0.0
    assert hit_at_k(RANKED, RELEVANT, 2) == 1.0
    assert recall_at_k(RANKED, RELEVANT, 1) == 0.0
    assert recall_at_k(RANKED, RELEVANT, 2) == approx(1 / 3)   # d1
    assert recall_at_k(RANKED, RELEVANT, 4) == approx(2 / 3)   # d1, d2; d5 never retrieved
    assert recall_at_k(RANKED, RELEVANT, 100) == approx(2 / 3)
    assert recall_at_k(RANKED, set(), 5) == 0.0
    # duplicates (e.g. chunk ranking mapped to doc ids) count once: top 2 distinct = d3, d1
    assert hit_at_k(["d3", "d3", "d1"], RELEVANT, 2) == 1.0
    with pytest.raises(InputError):
        hit_at_k(RANKED, RELEVANT, 0)


def test_reciprocal_rank():
    assert reciprocal_rank(RANKED, RELEVANT) == 0.5
    assert reciprocal_rank(RANKED, RELEVANT, k=1) == 0.0
    assert reciprocal_rank(["d3", "d3", "d1"], RELEVANT) == 0.5
    assert reciprocal_rank(["d2"], RELEVANT) == 1.0
    assert reciprocal_rank([], RELEVANT) == 0.0


def test_ndcg_binary_by_hand():
    # DCG@5 = 1/log2(1+2) [d1 at rank 2] + 1/log2(4+1) [d2 at rank 4] = 0.63093 + 0.43068
    # IDCG@5 = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.63093 + 0.5 (three relevant ids)
    assert ndcg_at_k(RANKED, RELEVANT, 5) == approx((1 / L3 + 1 / L5) / (1 + 1 / L3 + 0.5))
    assert ndcg_at_k(RANKED, RELEVANT, 5) == approx(0.49819, abs=1e-5)
    # @2: DCG = 1/log2(3); IDCG = 1 + 1/log2(3) -> 0.38685
    assert ndcg_at_k(RANKED, RELEVANT, 2) == approx(0.38685, abs=1e-5)
    assert ndcg_at_k(["d1", "d2", "d5"], RELEVANT, 10) == approx(1.0)
    assert ndcg_at_k(RANKED, set(), 10) == 0.0


def test_ndcg_graded_by_hand():
    gains = {"d1": 3, "d2": 1, "d5": 2, "d3": 0}
    # top 3 = d3 (0), d1 (3), d7 (0): DCG = 3/log2(3) = 1.89279
    # ideal: 3, 2, 1 -> 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.26186 + 0.5 = 4.76186
    assert ndcg_at_k(RANKED, gains, 3) == approx((3 / L3) / (3 + 2 / L3 + 0.5))
    assert ndcg_at_k(RANKED, gains, 3) == approx(0.39749, abs=1e-5)
    # gain 0 is not relevant for hit/recall/RR
    assert hit_at_k(RANKED, gains, 1) == 0.0
    assert recall_at_k(RANKED, gains, 2) == approx(1 / 3)
    with pytest.raises(InputError):
        ndcg_at_k(RANKED, {"d1": -1}, 3)


def test_retrieval_metrics_by_hand():
    run = {"q1": RANKED, "q2": ["x", "y"], "q3": ["a"], "only_in_run": ["z"]}
    qrels = {"q1": RELEVANT, "q2": {"y"}, "q3": set(), "q4": {"z"}}
    m = retrieval_metrics(run, qrels, ks=(1, 2))
    # counted: q1, q2, q4 (q3 has no relevant; q4 is missing from run -> all zeros)
    assert m["queries"] == 3
    assert m["hit@1"] == 0.0 and m["mrr@1"] == 0.0 and m["ndcg@1"] == 0.0 and m["recall@1"] == 0.0
    assert m["hit@2"] == approx(2 / 3)                       # q1 1, q2 1, q4 0
    assert m["recall@2"] == approx((1 / 3 + 1 + 0) / 3)      # 4/9
    assert m["mrr@2"] == approx((1 / 2 + 1 / 2 + 0) / 3)     # 1/3
    # q1 0.38685 (above); q2: y at rank 2 -> (1/log2(3)) / 1 = 0.63093; q4 0
    assert m["ndcg@2"] == approx((0.38685 + 0.63093) / 3, abs=1e-5)
    assert set(m) == {f"{n}@{k}" for n in ("hit", "recall", "mrr", "ndcg") for k in (1, 2)} | {"queries"}


def test_retrieval_metrics_no_queries():
    m = retrieval_metrics({"q": ["a"]}, {"q": set()}, ks=(1,))
    assert m == {"hit@1": 0.0, "recall@1": 0.0, "mrr@1": 0.0, "ndcg@1": 0.0, "queries": 0}


# ---------------------------------------------------------------- abstention

def test_abstention_scores_by_hand():
    answerable = {"q1": True, "q2": True, "q3": True, "q4": False, "q5": False, "q6": False}
    abstained = {"q1": False, "q2": False, "q3": True, "q4": True, "q5": True, "q6": False}
    s = abstention_scores(abstained, answerable)
    # abstained on q3, q4, q5 -> 2 of 3 on unanswerables; 2 of the 3 unanswerables abstained
    assert s["precision"] == approx(2 / 3) and s["recall"] == approx(2 / 3) and s["f1"] == approx(2 / 3)
    assert (s["total"], s["abstained"], s["unanswerable"], s["correct_abstentions"],
            s["wrong_abstentions"]) == (6, 3, 3, 2, 1)


def test_abstention_scores_zero_denominators():
    s = abstention_scores({"a": False, "b": False}, {"a": True, "b": False})
    assert s["precision"] == 0.0 and s["recall"] == 0.0 and s["f1"] == 0.0 and s["abstained"] == 0
    s = abstention_scores({"a": True}, {"a": True})
    assert s["precision"] == 0.0 and s["recall"] == 0.0 and s["unanswerable"] == 0
    with pytest.raises(InputError):
        abstention_scores({}, {"a": True})


# ---------------------------------------------------------------- latency

def test_latency_summary_by_hand():
    s = latency_summary([0.4, 0.1, 1.0, 0.3, 0.2])
    # sorted ms: 100 200 300 400 1000; p50 = rank 2 -> 300
    # p95: position 0.95*(5-1) = 3.8 -> 400 + 0.8*(1000-400) = 880; mean 2000/5 = 400
    assert s == {"p50_ms": approx(300), "p95_ms": approx(880), "mean_ms": approx(400), "n": 5}
    s = latency_summary([0.010, 0.020])
    assert s["p50_ms"] == approx(15) and s["p95_ms"] == approx(19.5)    # 10 + 0.95*10
    empty = latency_summary([])
    assert empty["n"] == 0 and math.isnan(empty["p50_ms"])


# ---------------------------------------------------------------- calibration

def test_calibration_bins_and_ece_by_hand():
    scores = [0.1, 0.15, 0.6, 0.65, 0.9, 1.0]
    correct = [0, 0, 1, 0, True, 1]
    bins = calibration_bins(scores, correct, n_bins=4)
    assert [(b["lo"], b["hi"], b["count"]) for b in bins] == [
        (0.0, 0.25, 2), (0.25, 0.5, 0), (0.5, 0.75, 2), (0.75, 1.0, 2)]   # 1.0 in the last bin
    assert bins[0]["mean_score"] == approx(0.125) and bins[0]["accuracy"] == 0.0
    assert bins[1]["mean_score"] is None and bins[1]["accuracy"] is None
    assert bins[2]["mean_score"] == approx(0.625) and bins[2]["accuracy"] == 0.5
    assert bins[3]["mean_score"] == approx(0.95) and bins[3]["accuracy"] == 1.0
    # ECE = 2/6*|0-0.125| + 2/6*|0.5-0.625| + 2/6*|1-0.95| = (0.25 + 0.25 + 0.1)/6 = 0.1
    assert expected_calibration_error(scores, correct, n_bins=4) == approx(0.1)


def test_calibration_edge_cases():
    assert expected_calibration_error([1.0, 0.0], [1, 0], n_bins=10) == 0.0
    assert expected_calibration_error([], [], n_bins=5) == 0.0
    assert calibration_bins([0.25], [1], n_bins=4)[1]["count"] == 1     # lo edge belongs to the bin
    with pytest.raises(InputError):
        calibration_bins([1.2], [1])
    with pytest.raises(InputError):
        calibration_bins([0.5, 0.5], [1])
    with pytest.raises(InputError):
        calibration_bins([0.5], [1], n_bins=0)


# ---------------------------------------------------------------- module hygiene

def test_module_imports_nothing_heavy():
    code = ("import sys, rag.eval.metrics; "
            "heavy = {'torch', 'sentence_transformers', 'faiss', 'matplotlib', 'transformers'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
