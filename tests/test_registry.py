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
    assert registry.default_name() == registry.DEFAULT_READER == "mpnet"
    monkeypatch.setattr(registry, "mpnet_is_interactive_here", lambda: False)
    assert registry.default_name() == registry.DEFAULT_READER_SLOW_HARDWARE == "fast"


def _row(reader, f1, noans, split="dev", questions=76):
    return {"reader": reader, "split": split, "questions": questions, "f1": f1, "noans_acc": noans}


def test_dev_choice_rule():
    rows = [_row("fused", 0.646, 0.895), _row("mpnet", 0.654, 0.895), _row("fast", 0.70, 0.80),
            _row("mpnet", 0.99, 0.99, split="test")]
    assert registry.dev_choice(rows, "fused") == "fused"  # 0.008 < 1/76: a tie, the incumbent stays
    assert registry.dev_choice(rows, "mpnet") == "mpnet"
    assert registry.dev_choice(rows, "fast") == "mpnet"  # the incumbent misses the NoAns target
    assert registry.dev_choice(rows, "fast", min_noans=0.0) == "fast"
    rows[0]["f1"] = 0.62  # 0.034 behind: a real win on dev
    assert registry.dev_choice(rows, "fused") == "mpnet"
    with pytest.raises(ValueError, match="NoAns target"):
        registry.dev_choice(rows, "fused", min_noans=0.95)


def test_the_default_is_the_dev_choice_of_the_latest_reader_table():
    """DEFAULT_READER must be what ``dev_choice`` keeps on the newest committed dev measurements of
    the MPNet-era readers (evals/reader_table/<date>/reader_table.json), so a new table that changes
    the choice fails here until the constant and the docs follow."""
    root = Path(__file__).resolve().parents[1] / "evals" / "reader_table"
    tables = [(json.loads(p.read_text()), p.parent.name) for p in root.glob("*/reader_table.json")]
    assert tables, f"no reader table under {root}"
    # newest by the time the table records (tables older than "created" have only a date; then the folder name)
    newest = max(tables, key=lambda t: (t[0]["date"], t[0].get("created", ""), t[1]))[0]
    rows = newest["gold"]
    assert {"mpnet", "fused"} <= {r["reader"] for r in rows}
    assert registry.dev_choice(rows, registry.DEFAULT_READER) == registry.DEFAULT_READER


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
    monkeypatch.setattr(neural, "cpu_has_native_bf16", lambda: True)
    assert neural.choose_precision("auto", "cpu", tmp_path) == "bf16"  # native bf16, not measured
    (tmp_path / "inference.json").write_text('{"cpu_precision": "int8", "native_bf16_precision": "fp32"}')
    assert neural.choose_precision("auto", "cpu", tmp_path) == "fp32"  # bf16 measured and refused
    monkeypatch.setattr(neural, "cpu_has_native_bf16", lambda: False)
    assert neural.choose_precision("auto", "cpu", tmp_path) == "int8"
    monkeypatch.setenv("RAG_READER_PRECISION", "fp32")
    assert neural.choose_precision("auto", "cpu", tmp_path) == "fp32"
    monkeypatch.setenv("RAG_READER_PRECISION", "fp8")
    with pytest.raises(ValueError, match="RAG_READER_PRECISION"):
        neural.choose_precision("auto", "cpu", tmp_path)
    with pytest.raises(ValueError, match="precision must be"):
        neural.NeuralReader(tmp_path, precision="half")


def test_keep_precision_rule():
    from rag.readers.neural import keep_precision

    fp32 = {"hasans_f1_span": 0.80, "best_f1": 0.69, "seconds": 80.0}
    close = {"hasans_f1_span": 0.797, "best_f1": 0.686, "seconds": 30.0}  # loses 0.004: kept
    lossy = {"hasans_f1_span": 0.80, "best_f1": 0.68, "seconds": 30.0}  # loses 0.01 of best F1
    slow = {"hasans_f1_span": 0.80, "best_f1": 0.69, "seconds": 90.0}  # no loss, but slower
    assert keep_precision({"fp32": fp32, "bf16": close}, "bf16") == "bf16"
    assert keep_precision({"fp32": fp32, "bf16": lossy}, "bf16") == "fp32"
    assert keep_precision({"fp32": fp32, "int8": slow}, "int8") == "fp32"
    assert keep_precision({"fp32": fp32}, "int8") == "fp32"  # not measured


class FirstSentenceReader:
    """A reader of our own: the first sentence of the best passage, at a fixed score. It asks for
    the question vector, so the answerer must hand one over even in BM25 mode."""

    uses_vectors = True

    def __init__(self, index, embedder, name="first-sentence"):
        self.index, self.embedder, self.name = index, embedder, name
        self.seen_qvecs = []

    def read(self, question, passages, qvec=None):
        from rag.readers.base import ReaderOutput, SpanCandidate

        self.seen_qvecs.append(qvec)
        if not passages:
            return ReaderOutput([], 1.0)
        p = passages[0]
        end = p.text.find(". ")
        end = len(p.text) if end < 0 else end + 1
        return ReaderOutput([SpanCandidate(p.doc_id, p.start, p.start + end, p.text[:end], 0.9, p)])


@pytest.fixture
def first_sentence_reader():
    built = []

    def build(index, embedder):
        built.append(FirstSentenceReader(index, embedder))
        return built[-1]

    registry.register("first-sentence", build, "the first sentence of the best passage")
    yield built
    registry.unregister("first-sentence")


def test_a_reader_of_our_own_plugs_in_by_name(first_sentence_reader, seed_index, embedder):
    """Registered through the same door as the built-ins: rag.load(reader=name) builds it over the
    index with the index's embedder, and every answer is a quoted span with exact offsets."""
    assert "first-sentence" in registry.names()
    qa = rag.load(seed_index, embedder=embedder, reader="first-sentence")
    ans = qa.ask("Who heads Rosoboronexport?", mode="bm25")
    (reader,) = first_sentence_reader
    assert qa.answerer.reader is reader and reader.index is qa.index and reader.embedder is embedder
    assert ans.reader == "first-sentence" and ans.text
    assert qa.source(ans.doc_id)[ans.start:ans.end] == ans.text
    # uses_vectors: the question vector was encoded for it although BM25 needs none
    assert reader.seen_qvecs[-1] is not None and reader.seen_qvecs[-1].shape == (qa.index.dimension,)


def test_registering_refuses_taken_and_unusable_names(first_sentence_reader):
    with pytest.raises(rag.InputError, match="'first-sentence' is taken"):
        registry.register("first-sentence", lambda index, embedder: None)
    with pytest.raises(rag.InputError, match="'neural' is taken"):
        registry.register("neural", lambda index, embedder: None)  # an alias counts
    with pytest.raises(rag.InputError, match="without '/'"):
        registry.register("owner/model", lambda index, embedder: None)
    with pytest.raises(rag.InputError, match="build must be a function"):
        registry.register("other", "not callable")


def test_a_build_that_returns_no_reader_is_refused(seed_index, embedder):
    registry.register("broken", lambda index, embedder: object())
    try:
        with pytest.raises(rag.InputError, match="'broken': its build function returned .* not a Reader"):
            rag.load(seed_index, embedder=embedder, reader="broken").ask("Who heads Rosoboronexport?")
    finally:
        registry.unregister("broken")


def test_the_built_in_readers_are_ordinary_entries():
    for name in ("features", "mpnet", "minilm", "fused", "fast"):
        spec = registry.READERS[name]
        assert spec.name == name and callable(spec.build) and spec.summary
    assert registry.READERS["features"].model is None
    assert {registry.READERS[n].model for n in ("mpnet", "fused")} == {"mpnet"}
