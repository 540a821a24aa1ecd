"""Per-setting calibration: each reading setting the reader's dev sweep calibrated answers with its
own calibration and threshold; a setting dev never saw keeps the chosen one's, and says so."""
import json

import pytest

import rag
from rag.answer import Answerer
from rag.readers.base import ReaderOutput, SpanCandidate
from rag.readers.settings import Calibrator, Tuning, describe_setting, setting_key, sweep_tunings
from rag.schema import Passage

P = Passage("a", "A", "The deal was worth about $2 billion. It was signed in 2017.", 100, 158, 1.0, "a:0")

#: The top-level (chosen) setting and two sweep rows: one with its own calibration (k 10), one
#: written before sweeps recorded calibrations (k 8: left out).
SETTINGS = {
    "reader": "stub", "k": 5, "context": 300, "windows": "merged", "threshold": 0.5,
    "calibration": {"a": 1.0, "b": 0.0, "identity": False},
    "k_sweep": [
        {"k": 5, "context": 300, "windows": "merged", "dev_f1": 0.72, "threshold": 0.5,
         "calibration": {"a": 1.0, "b": 0.0, "identity": False}},
        {"k": 8, "context": 300, "dev_f1": 0.70, "threshold": 0.61},
        {"k": 10, "context": 300, "windows": "separate", "dev_f1": 0.74, "threshold": 0.7,
         "calibration": {"a": 2.0, "b": 0.0, "identity": False}},
        {"k": 10, "context": 0, "dev_f1": 0.66, "threshold": 0.4,
         "calibration": {"a": 0.5, "b": 0.0, "identity": False}},
    ],
}


class StubReader:
    name = "stub"
    uses_vectors = False

    def read(self, question, passages, qvec=None):
        text = "$2 billion"
        rel = P.text.index(text)
        return ReaderOutput([SpanCandidate(P.doc_id, P.start + rel, P.start + rel + len(text), text, 0.6, P,
                                           {"span_logit": 1.0})])


class StubRetriever:
    index = None  # no index: the reader reads the passages as they are, whatever the context
    embedder = None

    def search_many(self, questions, k, mode, qvecs=None):
        return [[P] for _ in questions]


def answerer(monkeypatch, threshold=None):
    monkeypatch.setattr("rag.answer.make_reader", lambda spec, index, embedder: StubReader())
    monkeypatch.setattr("rag.answer.load_reader_settings", lambda name: json.loads(json.dumps(SETTINGS)))
    return Answerer.create(StubRetriever(), reader="stub", threshold=threshold)


def test_sweep_rows_with_a_calibration_become_tunings_by_setting():
    t = sweep_tunings(SETTINGS)
    assert set(t) == {(5, 300, "merged"), (10, 300, "separate"), (10, 0, "merged")}  # k 8 has no calibration
    assert t[(10, 300, "separate")].threshold == 0.7 and t[(10, 300, "separate")].calibrator.a == 2.0
    assert t[(10, 300, "separate")].source == "sweep"
    assert sweep_tunings({"k": 5}) == {}
    # without a context the layout does not matter
    assert setting_key(10, 0, "separate") == (10, 0, "merged")
    assert describe_setting((10, 300, "separate")) == "k 10, context 300, separate windows"
    assert describe_setting((10, 0, "merged")) == "k 10, context 0"


def test_each_setting_answers_with_its_own_calibration_and_threshold(monkeypatch):
    a = answerer(monkeypatch)
    assert a.chosen == (5, 300, "merged")
    q = ["How much was the deal worth?"]
    # the chosen setting: the top-level calibration (identity here: a=1, b=0) and threshold 0.5
    ans = a.answer_many(q, k=5, mode="bm25")[0]
    assert ans.text == "$2 billion" and ans.score == pytest.approx(0.6)
    assert a.tuning(5).source == "chosen"
    # k 10 in separate windows: its row's calibration (a=2: 0.6 -> 0.692) and threshold (0.7): abstains
    a.windows = "separate"
    t = a.tuning(10)
    assert t.source == "sweep" and t.threshold == 0.7
    ans = a.answer_many(q, k=10, mode="bm25")[0]
    assert ans.text is None and ans.score == pytest.approx(1 - 0.36 / 0.52)
    # a threshold given with the call still wins, over the row's calibrated score
    ans = a.answer_many(q, k=10, mode="bm25", threshold=0.65)[0]
    assert ans.text == "$2 billion" and ans.score == pytest.approx(0.36 / 0.52)
    # k 10 without a context: that row's (a=0.5: 0.6 -> 0.550) over its threshold 0.4
    a.context = 0
    ans = a.answer_many(q, k=10, mode="bm25")[0]
    assert ans.text == "$2 billion" and ans.score == pytest.approx(0.6 ** 0.5 / (0.6 ** 0.5 + 0.4 ** 0.5))
    # k 8 at context 300: its row has no calibration, so the chosen setting's, marked untuned
    a.context, a.windows = 300, "merged"
    assert a.tuning(8) == Tuning(a.calibrator, 0.5, "untuned")
    assert a.answer_many(q, k=8, mode="bm25")[0].score == pytest.approx(0.6)
    # the chosen setting with its calibration replaced (as rag.train.tuning does) uses the new one
    a.calibrator = Calibrator(2.0, 0.0, identity=False)
    assert a.answer_many(q, k=5, mode="bm25", threshold=0.0)[0].score == pytest.approx(0.36 / 0.52)


def test_a_threshold_given_at_load_replaces_every_settings_threshold_but_not_their_calibrations(monkeypatch):
    a = answerer(monkeypatch, threshold=0.65)
    a.windows = "separate"
    t = a.tuning(10)
    assert t.threshold == 0.65 and t.calibrator.a == 2.0 and t.source == "sweep"
    assert a.tuning(5).threshold == 0.65
    assert a.answer_many(["How much?"], k=10, mode="bm25")[0].text == "$2 billion"


def test_a_reader_without_a_tuned_k_has_one_tuning_everywhere(monkeypatch):
    a = Answerer(StubRetriever(), StubReader(), threshold=0.3)
    assert a.chosen is None
    assert a.tuning(12) == Tuning(a.calibrator, 0.3, "chosen")


def test_choose_k_keeps_to_the_latency_budget():
    from rag.train.tuning import choose_k, within_budget

    def row(k, f1):
        return (k, f"cal{k}", 0.1 * k, {"constrained": {"f1": f1}, "best_f1": 0.99})

    sweep, costs = [row(5, 0.70), row(10, 0.75), row(3, 0.60)], [4400, 10500, 2600]
    assert choose_k(sweep, 100, costs)[0] == 10
    assert choose_k(sweep, 100, costs, max_cost=5000)[0] == 5  # 10 reads too much: the best within budget
    assert choose_k(sweep, 100, costs, max_cost=3000)[0] == 3
    assert within_budget(costs, None) == [0, 1, 2] and within_budget(costs, 4400) == [0, 2]
    with pytest.raises(ValueError, match=r"no setting reads at most 2,000 characters per question \(the cheapest "
                                         r"reads 2,600\): raise --max-read-chars"):
        choose_k(sweep, 100, costs, max_cost=2000)


def test_keep_chosen_records_the_sweep_and_keeps_the_incumbent(monkeypatch):
    from rag.train.tuning import keep_chosen

    incumbent = {"reader": "stub", "k": 5, "context": 300, "threshold": 0.326, "dev_best_f1": 0.73,
                 "dev_f1_at_threshold": 0.728, "calibration": {"a": 0.53, "b": 1.51, "identity": False},
                 "calibrated_on": {"date": "2026-12-07"}}
    rows = [{"k": 5, "context": 300, "windows": "merged", "read_chars": 4488, "dev_f1": 0.728, "threshold": 0.334,
             "calibration": {"a": 0.6, "b": 1.4, "identity": False}},
            {"k": 10, "context": 300, "windows": "separate", "read_chars": 10560, "dev_f1": 0.748,
             "threshold": 0.451, "calibration": {"a": 0.7, "b": 1.2, "identity": False}}]
    out = keep_chosen(incumbent, rows, 0, "python -m rag.train.tuning stub", 6000, 103, 12.0, "fp32")
    for key in ("k", "context", "threshold", "calibration", "calibrated_on", "dev_f1_at_threshold"):
        assert out[key] == incumbent[key]
    assert out["k_sweep"][0]["calibration"] == incumbent["calibration"] and out["k_sweep"][0]["threshold"] == 0.326
    # the row's dev F1 is this sweep's (what the rule compared), with the refit threshold it was read at
    assert out["k_sweep"][0]["dev_f1"] == 0.728 and "at its own threshold 0.3340" in out["k_sweep"][0]["kept"]
    assert out["k_sweep"][1] == rows[1] and rows[0]["threshold"] == 0.334  # the input rows untouched
    assert out["max_read_chars"] == 6000 and out["sweep_calibrated_on"]["questions"] == 103
    assert out["sweep_calibrated_on"]["precision"] == "fp32"
    # what answering then uses: the incumbent at the chosen setting, the new row elsewhere
    monkeypatch.setattr("rag.answer.make_reader", lambda spec, index, embedder: StubReader())
    monkeypatch.setattr("rag.answer.load_reader_settings", lambda name: out)
    a = Answerer.create(StubRetriever(), reader="stub")
    assert a.tuning(5).threshold == 0.326
    a.windows = "separate"
    assert a.tuning(10).threshold == 0.451 and a.tuning(10).calibrator.a == 0.7


def test_keep_rows_carries_the_settings_not_swept_and_refuses_a_better_one():
    from rag.train.tuning import kept_rows

    incumbent = {"k_sweep": [
        {"k": 5, "context": 0, "read_chars": 3236, "dev_f1": 0.678, "threshold": 0.6, "calibration": {"a": 1}},
        {"k": 5, "context": 300, "windows": "merged", "read_chars": 4488, "dev_f1": 0.728, "threshold": 0.326,
         "calibration": {"a": 2}, "kept": "the chosen setting's calibration"},
        {"k": 10, "context": 300, "windows": "separate", "read_chars": 10560, "dev_f1": 0.748, "threshold": 0.451,
         "calibration": {"a": 3}}]}
    swept = [{"k": 5, "context": 300, "windows": "merged", "read_chars": 4488, "dev_f1": 0.728},
             {"k": 5, "context": 450, "windows": "merged", "read_chars": 5300, "dev_f1": 0.746}]
    carried = kept_rows(incumbent, swept, 0.746, 103, 5800)
    assert carried == [incumbent["k_sweep"][0], incumbent["k_sweep"][2]]  # the swept setting's old row is dropped
    assert carried[0] is not incumbent["k_sweep"][0]
    # over the budget a better row is only carried; within it, it would have to be chosen: refused
    assert kept_rows(incumbent, swept[:1], 0.728, 103, 5800)[-1]["dev_f1"] == 0.748
    with pytest.raises(ValueError, match=r"k 10, context 300, separate windows \(dev F1 0.748\) beats the sweep's "
                                         r"choice \(0.728\) within the budget: add it to the sweep"):
        kept_rows(incumbent, swept[:1], 0.728, 103, None)
    # the incumbent's chosen row, carried when another setting is swept, loses its "kept" note
    other = [{"k": 3, "context": 300, "windows": "merged", "read_chars": 2800, "dev_f1": 0.76}]
    assert all("kept" not in r for r in kept_rows(incumbent, other, 0.76, 103, None))


def test_the_budget_is_checked_before_any_reading(capsys, monkeypatch):
    """--max-read-chars that no setting meets stops the sweep after retrieval, naming the cheapest,
    before the reader reads a question; --keep-chosen is refused for a reader with no chosen setting."""
    from rag.train import tuning

    def no_reading(*a, **kw):
        raise AssertionError("the reader read before the budget was checked")

    monkeypatch.setattr(tuning, "calibrate_on_dev", no_reading)
    with pytest.raises(SystemExit) as e:
        tuning.main(["features", "--k", "3,5", "--context", "0", "--max-read-chars", "100", "--out", "x.json"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--max-read-chars: no setting reads at most 100 characters per question (the cheapest reads" in err
    for bad in ("0", "4.5k", "-3"):
        with pytest.raises(SystemExit) as e:
            tuning.main(["features", "--out", "x.json", "--max-read-chars", bad])
        assert e.value.code == 2
        assert f"expected a whole number of characters per question (e.g. 4600), got '{bad}'" in capsys.readouterr().err


def test_the_shipped_rows_that_carry_a_calibration_load_as_tunings():
    """Every shipped settings file's calibrated rows are well-formed and its chosen setting is one of them
    or absent from them (answering there uses the top level)."""
    from rag.readers.settings import load_reader_settings

    for name in ("mpnet", "fused", "fast", "minilm", "features"):
        s = load_reader_settings(name)
        tunings = sweep_tunings(s)
        for key, t in tunings.items():
            assert 0.0 <= t.threshold <= 1.0 and not t.calibrator.identity, (name, key)
        chosen = setting_key(s["k"], s.get("context", 0), s.get("windows", "merged"))
        if chosen in tunings and any("kept" in r for r in s["k_sweep"]):
            assert tunings[chosen].threshold == s["threshold"], name
    # the README's opt-in for whoever can wait, separate windows at k 10, answers at its own threshold
    assert (10, 300, "separate") in sweep_tunings(load_reader_settings("mpnet"))


def test_load_reports_the_tuning_of_each_setting(seed_index, embedder):
    from rag.readers.settings import load_reader_settings

    qa = rag.load(seed_index, embedder=embedder, reader="features")
    assert qa.tuning().source == "chosen" and qa.tuning().threshold == qa.answerer.threshold
    rows = sweep_tunings(load_reader_settings("features"))
    for k in range(1, 13):
        key = setting_key(k, qa.answerer.context, qa.answerer.windows)
        expected = "chosen" if key == qa.answerer.chosen else "sweep" if key in rows else "untuned"
        assert qa.tuning(k).source == expected, k
    assert qa.tuning(qa.read_k + 2).source == "untuned"  # its rows predate per-row calibrations
    with pytest.raises(rag.InputError, match="k must be a whole number of at least 1"):
        qa.tuning(0)
