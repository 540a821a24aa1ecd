"""The evaluation runner (`rag eval`) end to end: real embedder, real seed index, default reader.

Kept small for time: a 15-question dev subset in two modes, the 11-question SQuAD fixture in one
mode, a 3-question CLI run in BM25 mode. The regression test at the bottom checks the floors.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rag.eval import datasets, plan, runner
from rag.cli import main
from rag.errors import InputError

# Regression floors on the gold TEST split, hybrid mode, default reader (see the test at the bottom).
# Answer floors (hasans_f1, evidence_contains, noans_acc, ...) are read from evals/floors.json when it
# exists; its keys are keys of report.json's "headline".
FLOORS = {"passage_hit@5": 0.75, "doc_hit@5": 0.85}

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
GOLD = ROOT / "evals" / "gold.jsonl"
ANSWER_FLOORS = ROOT / "evals" / "floors.json"
SQUAD_TINY = Path(__file__).resolve().parent / "fixtures" / "squad_tiny.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROW_KEYS = {"id", "question", "type", "split", "setting", "mode", "reader", "prediction", "score", "thresholded",
            "gold", "em", "f1", "evidence", "evidence_contains", "citation_doc_ids", "doc_rank", "passage_rank"}


def _gold_rows() -> list[dict]:
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


def _strict_json(path: Path) -> dict:
    def no_constants(name: str):
        raise AssertionError(f"{path.name} holds the non-JSON constant {name}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constants)


def _assert_png(path: Path) -> None:
    assert path.is_file(), f"{path.name} was not written"
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert len(data) > 5_000, f"{path.name} is only {len(data)} bytes: an empty plot?"


def _in_unit_interval(metrics: dict) -> bool:
    return all(0.0 <= v <= 1.0 for k, v in metrics.items() if k != "queries")


@pytest.fixture(scope="module")
def dev_subset(tmp_path_factory) -> Path:
    """15 dev questions: the first 11 answerable and 4 unanswerable ones (every kind) by id."""
    dev = sorted((r for r in _gold_rows() if r["split"] == "dev"), key=lambda r: r["id"])
    answerable = [r for r in dev if r["answerable"]][:11]
    kinds = {r["unanswerable_kind"]: r for r in reversed(dev) if not r["answerable"]}
    unanswerable = list(kinds.values())
    unanswerable += [r for r in dev if not r["answerable"] and r not in unanswerable][:4 - len(unanswerable)]
    path = tmp_path_factory.mktemp("gold") / "gold15.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in answerable + unanswerable), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dev_run(dev_subset, seed_index, embedder, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("report-dev")
    report = runner.run_gold_eval(dev_subset, seed_index, SEEDS, out, split="dev", modes=("bm25", "hybrid"),
                                       embedder=embedder, progress=False)
    return report, out


# ------------------------------------------------------------------------------ gold set, end to end

@pytest.mark.slow
def test_gold_report_json_has_metrics_and_rows(dev_run):
    _, out = dev_run
    report = _strict_json(out / "report.json")
    assert {"created", "settings", "headline", "retrieval", "answers", "questions", "worst_failures"} <= set(report)
    assert report["settings"]["split"] == "dev" and report["settings"]["questions"] == 15
    assert report["settings"]["unanswerable"] == 4
    assert set(report["retrieval"]) == {"bm25", "hybrid"}
    for mode, levels in report["retrieval"].items():
        for level in ("doc", "passage"):
            m = levels[level]
            assert m["queries"] == 11, (mode, level)
            assert _in_unit_interval(m), (mode, level, m)
            assert [m[f"recall@{k}"] for k in range(1, 11)] == sorted(m[f"recall@{k}"] for k in range(1, 11))
    rows = report["questions"]
    assert len(rows) == 15 * 2
    assert ROW_KEYS <= set(rows[0])
    assert {(r["mode"], r["id"]) for r in rows} == {(m, r["id"]) for m in ("bm25", "hybrid") for r in rows}


@pytest.mark.slow
def test_gold_answer_metrics_follow_the_configured_threshold(dev_run):
    report, _ = dev_run
    assert len(report["answers"]) == 2
    for cfg in report["answers"]:
        t = cfg["threshold"]
        rows = [r for r in report["questions"] if r["mode"] == cfg["mode"]]
        for r in rows:
            expected = r["prediction"] if r["prediction"] is not None and r["score"] >= t else None
            assert r["thresholded"] == expected, r["id"]
            assert r["evidence_contains"] is False or r["answerable"]
        s = cfg["squad"]
        assert (s["total"], s["HasAns_total"], s["NoAns_total"]) == (15, 11, 4)
        assert s["f1"] == pytest.approx(sum(r["f1"] for r in rows) / 15)
        assert cfg["noans_acc"] == pytest.approx(sum(r["thresholded"] is None for r in rows if not r["answerable"]) / 4)
        assert len(cfg["threshold_curve"]) == 51
        assert sum(b["count"] for b in cfg["calibration"]["bins"]) == cfg["calibration"]["n"]
        assert 0.0 <= cfg["calibration"]["ece"] <= 1.0
        assert cfg["latency"]["n"] == 15 and cfg["latency"]["p50_ms"] <= cfg["latency"]["p95_ms"]
        assert set(cfg["by_unanswerable_kind"]) == {"chrome", "near_miss", "off_topic"}
        assert sum(g["count"] for g in cfg["by_type"].values()) == 15


@pytest.mark.slow
def test_gold_report_markdown_and_plots(dev_run):
    _, out = dev_run
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Retrieval per mode" in md and "## Answers per mode and reader" in md
    assert "| mode | queries | hit@1 |" in md
    assert "| bm25 | 11 |" in md and "| hybrid | 11 |" in md
    for section in ("## Threshold sweep", "## Per question type", "## Per split", "## Unanswerable questions per kind",
                    "## Worst failures"):
        assert section in md
    for name in ("recall_at_k.png", "threshold.png", "reliability.png"):
        _assert_png(out / name)


def test_load_gold_rejects_bad_input(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x1", "question": "Q?", "answers": ["a"], "split": "dev"}\n{not json\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2"):
        datasets.load_gold(bad, "all")
    with pytest.raises(InputError, match="'test' split"):
        datasets.load_gold(_one_line(tmp_path, split="dev"), "test")
    with pytest.raises(InputError, match="retrieval mode"):
        plan.parse_modes("dense,sparse")


def _one_line(tmp_path: Path, split: str) -> Path:
    p = tmp_path / "one.jsonl"
    p.write_text(json.dumps({"id": "x1", "question": "Q?", "answers": ["a"], "split": split}) + "\n", encoding="utf-8")
    return p


# ------------------------------------------------------------------------------ SQuAD files

def test_squad_fixture_offsets_are_exact():
    data = json.loads(SQUAD_TINY.read_text(encoding="utf-8"))["data"]
    assert len(data) == 2 and all(2 <= len(a["paragraphs"]) <= 3 for a in data)
    qas = [(p["context"], q) for a in data for p in a["paragraphs"] for q in p["qas"]]
    assert 9 <= len(qas) <= 13
    assert sum(q["is_impossible"] for _, q in qas) == 3
    for context, q in qas:
        assert q["is_impossible"] == (not q["answers"]), q["id"]
        for a in q["answers"]:
            assert context[a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"], q["id"]


def test_squad_paragraph_files_keep_the_answers_in_the_body(tmp_path):
    squad = datasets.load_squad(SQUAD_TINY)
    assert not squad.warnings
    datasets.write_squad_docs(squad.paragraphs, tmp_path)
    sources = {p.doc_id: (tmp_path / f"{p.doc_id}.txt").read_text(encoding="utf-8") for p in squad.paragraphs}
    assert sorted(sources) == ["honey-bee/0", "honey-bee/1", "honey-bee/2", "lighthouse-keeping/0",
                               "lighthouse-keeping/1"]
    assert sources["honey-bee/1"].startswith("Paragraph 1 of Honey bee\n")
    for it in squad.items:
        for a, b in squad.spans[it.id]:
            assert sources[it.doc_ids[0]][a:b] in it.answers
    assert datasets.squad_answers_outside_body(squad) == []


@pytest.mark.slow
def test_squad_eval_reports_hasans_and_noans(embedder, tmp_path):
    report = runner.run_squad_eval(SQUAD_TINY, tmp_path, modes=("hybrid",), embedder=embedder, progress=False)
    assert report["settings"]["paragraphs"] == 5
    cfgs = {cfg["setting"]: cfg for cfg in report["answers"]}
    assert set(cfgs) == {"open", "given_paragraph"}  # open retrieval and reading the gold paragraph
    for cfg in cfgs.values():
        s = cfg["squad"]
        assert (s["total"], s["HasAns_total"], s["NoAns_total"]) == (11, 8, 3)
        for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"):
            assert 0.0 <= s[key] <= 1.0, key
        assert {"best_f1", "best_exact", "best_f1_thresh"} <= set(cfg["best_thresholds"])
    given = [r for r in report["questions"] if r.get("setting") == "given_paragraph"]
    assert given and all(r["prediction"] is None or r["citation_doc_ids"] == r["gold_doc_ids"][:1] for r in given)
    doc = report["retrieval"]["hybrid"]["doc"]
    assert doc["queries"] == 8 and _in_unit_interval(doc)
    assert doc["hit@1"] >= 0.6, doc  # each question's own paragraph, among 5, is usually first
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "HasAns F1" in md and "NoAns acc" in md
    for name in ("recall_at_k.png", "threshold.png", "reliability.png"):
        _assert_png(tmp_path / name)


# ------------------------------------------------------------------------------ the CLI

@pytest.mark.slow
def test_cli_eval_writes_the_report(dev_subset, seed_index, embedder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "_default_embedder", lambda: embedder)
    out = tmp_path / "report"
    code = main(["eval", str(dev_subset), "--index", str(seed_index), "--docs", str(SEEDS), "--split", "all",
                 "--modes", "bm25", "--limit", "3", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = _strict_json(out / "report.json")
    assert report["settings"]["questions"] == 3 and report["settings"]["modes"] == ["bm25"]
    assert (out / "report.md").is_file()
    assert "retrieval" in captured.out and f"report: {out / 'report.md'}" in captured.out


def test_cli_eval_missing_gold_file_is_one_line_exit_2(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    code = main(["eval", str(missing), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and str(missing) in err
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------ REGRESSION FLOORS

def _answer_floors() -> dict[str, float]:
    if not ANSWER_FLOORS.is_file():
        return {}
    floors = json.loads(ANSWER_FLOORS.read_text(encoding="utf-8"))
    assert isinstance(floors, dict) and all(isinstance(v, (int, float)) for v in floors.values()), floors
    return {k: float(v) for k, v in floors.items()}


@pytest.mark.slow
def test_regression_floors_on_the_test_split(seed_index, embedder, tmp_path):
    """REGRESSION TEST: the gold TEST split, hybrid mode, default reader must stay above the floors.

    FLOORS (retrieval) are above; answer floors come from evals/floors.json when it exists. Without
    answer floors no answer is scored, so the reader is not run (retrieval only, to keep the suite fast).
    """
    answer_floors = _answer_floors()
    readers = (None,) if answer_floors else ()
    report = runner.run_gold_eval(GOLD, seed_index, SEEDS, tmp_path, split="test", modes=("hybrid",),
                                       readers=readers, embedder=embedder, progress=False)
    headline = report["headline"]
    floors = {**FLOORS, **answer_floors}
    unknown = sorted(set(floors) - set(headline))
    assert not unknown, f"floor keys not in the report headline: {unknown} (known: {sorted(headline)})"
    below = {k: f"{headline[k]:.3f} < {floor:.3f}" for k, floor in floors.items()
             if not (math.isfinite(headline[k]) and headline[k] >= floor)}
    assert not below, f"below the regression floors on the test split: {below}"
