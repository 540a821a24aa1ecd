"""Reader names, aliases, the default's choice and its fallbacks (no model weights are loaded)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import rag
from rag.readers import registry


def test_names_and_aliases():
    assert registry.canonical("neural") == "mpnet"
    assert registry.canonical("fused-minilm") == "fast"
    for n in registry.READERS:
        assert registry.canonical(n) == n
    with pytest.raises(rag.InputError, match="unknown reader 'mpnett'.*fused"):
        registry.canonical("mpnett")


def test_every_shipped_reader_has_its_settings():
    from rag.readers.settings import load_reader_settings

    for n in ("features", "minilm", "mpnet", "fast", "fused"):
        s = load_reader_settings(n)
        assert 0.0 < s["threshold"] < 1.0, n
        assert s.get("reader") == n, n


def test_default_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(registry, "missing_reason", lambda n: None)
    monkeypatch.setattr(registry, "mpnet_is_interactive_here", lambda: True)
    assert registry.default_name() == registry.DEFAULT_READER == "fused"
    monkeypatch.setattr(registry, "mpnet_is_interactive_here", lambda: False)
    assert registry.default_name() == registry.DEFAULT_READER_SLOW_HARDWARE == "fast"


def dev_choice(rows: list[dict], min_noans: float) -> str:
    """The rule DEFAULT_READER documents: best dev overall F1 among readers meeting the NoAns target."""
    eligible = [r for r in rows if r["split"] == "dev" and r["noans_acc"] >= min_noans]
    assert eligible, f"no reader meets the dev NoAns target {min_noans}: {rows}"
    return max(eligible, key=lambda r: r["f1"])["reader"]


def test_the_default_is_the_dev_choice_of_the_latest_reader_table():
    """DEFAULT_READER must be what its rule picks on the newest committed dev measurements of the
    MPNet-era readers (evals/reader_table/<date>/reader_table.json), so a new table that changes the
    choice fails here until the constant and the docs follow."""
    root = Path(__file__).resolve().parents[1] / "evals" / "reader_table"
    tables = sorted(root.glob("*/reader_table.json"))
    assert tables, f"no reader table under {root}"
    rows = json.loads(tables[-1].read_text())["gold"]
    assert {"mpnet", "fused"} <= {r["reader"] for r in rows}
    assert dev_choice(rows, registry.DEFAULT_MIN_DEV_NOANS) == registry.DEFAULT_READER
    # the rule can disagree with plain best F1 (it does today: mpnet has the higher dev F1)
    assert dev_choice(rows, 0.0) == max((r for r in rows if r["split"] == "dev"), key=lambda r: r["f1"])["reader"]


def test_default_falls_back_when_the_mpnet_base_is_missing(monkeypatch, capsys):
    monkeypatch.setattr(registry, "mpnet_is_interactive_here", lambda: True)
    real = registry.missing_reason
    monkeypatch.setattr(registry, "missing_reason",
                        lambda n: "the MPNet base encoder is not installed" if registry.READERS[registry.canonical(n)].model == "mpnet" else real(n))
    assert registry.default_name() == "fast"
    assert "not installed" in capsys.readouterr().err


def test_a_named_reader_whose_model_is_missing_is_refused(monkeypatch, seed_index, embedder):
    monkeypatch.setattr(registry, "missing_reason", lambda n: "the shipped MPNet adapter is missing from X")
    qa = rag.load(seed_index, embedder=embedder, reader="mpnet")
    with pytest.raises(rag.InputError, match="cannot be loaded: the shipped MPNet adapter is missing.*setup.sh"):
        qa.ask("Who?")


def test_precision_choice(monkeypatch, tmp_path):
    from rag.readers import neural

    monkeypatch.delenv("RAG_READER_PRECISION", raising=False)
    assert neural.choose_precision("fp32", "cpu", tmp_path) == "fp32"
    monkeypatch.setattr(neural, "cpu_has_native_bf16", lambda: True)
    assert neural.choose_precision("auto", "cpu", tmp_path) == "bf16"
    monkeypatch.setattr(neural, "cpu_has_native_bf16", lambda: False)
    assert neural.choose_precision("auto", "cpu", tmp_path) == "fp32"  # no inference.json
    (tmp_path / "inference.json").write_text('{"cpu_precision": "int8"}')
    assert neural.choose_precision("auto", "cpu", tmp_path) == "int8"
    assert neural.choose_precision("auto", "cuda", tmp_path) == "fp32"
    monkeypatch.setenv("RAG_READER_PRECISION", "fp32")
    assert neural.choose_precision("auto", "cpu", tmp_path) == "fp32"
    monkeypatch.setenv("RAG_READER_PRECISION", "fp8")
    with pytest.raises(ValueError, match="RAG_READER_PRECISION"):
        neural.choose_precision("auto", "cpu", tmp_path)
    with pytest.raises(ValueError, match="precision must be"):
        neural.NeuralReader(tmp_path, precision="half")
