"""int8 with activation smoothing (rag.readers.int8) on a tiny random MPNet: exact before
quantisation, closer to fp32 than plain int8 where an activation channel is an outlier, calibrated
on training articles only, and refused clearly when its file is damaged or belongs to another model."""
from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch

import rag
from rag.readers import int8
from rag.readers.neural import NeuralReader
from rag.train import calibrate_int8
from rag.train.neural import load_model

from test_train import squad_fixture  # noqa: E402


def _model(folder):
    from transformers import AutoModelForQuestionAnswering

    return AutoModelForQuestionAnswering.from_pretrained(str(folder)).float().eval()


def _with_outlier(model):
    """Make one hidden channel ~60x larger than the rest, as MPNet's real activations are."""
    with torch.no_grad():
        model.mpnet.embeddings.LayerNorm.weight[3] = 60.0
        model.mpnet.embeddings.LayerNorm.bias[3] = 20.0
    return model


def _batches(n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(5, 1000, (4, 24), generator=g),
             "attention_mask": torch.ones(4, 24, dtype=torch.long)} for _ in range(n)]


def _logits(model, batch):
    with torch.no_grad():
        out = model(**batch)
    return torch.cat([out.start_logits, out.end_logits], 1)


def test_smoothing_alone_changes_nothing(tiny_mpnet):
    model = _with_outlier(_model(tiny_mpnet))
    maxima = int8.activation_maxima(model, _batches())
    assert set(maxima) == set(int8.linear_names(model)) and not any(n.startswith("qa_outputs") for n in maxima)
    assert max(float(v.max()) for v in maxima.values()) > 20  # the outlier is seen
    want = _logits(model, _batches(1, seed=9)[0])
    smoothed = copy.deepcopy(model)
    int8.smooth(smoothed, {"alpha": 0.8, "maxima": maxima})
    down = [n for n in maxima if n.endswith("output.dense") and ".attention." not in n]
    assert down and set(int8.smoothed_names(model)) == set(maxima) - set(down)
    assert sum(isinstance(m, int8.SmoothedLinear) for m in smoothed.modules()) == len(maxima) - len(down)
    assert torch.allclose(_logits(smoothed, _batches(1, seed=9)[0]), want, atol=1e-4)


def test_smoothed_int8_tracks_fp32_where_plain_int8_does_not(tiny_mpnet):
    model = _with_outlier(_model(tiny_mpnet))
    smoothing = {"alpha": 0.8, "maxima": int8.activation_maxima(model, _batches())}
    probe = _batches(2, seed=9)
    want = [_logits(model, b) for b in probe]
    plain = int8.quantize_int8(copy.deepcopy(model))
    smooth = int8.quantize_int8(copy.deepcopy(model), smoothing)
    err_plain = sum(float((_logits(plain, b) - w).abs().mean()) for b, w in zip(probe, want))
    err_smooth = sum(float((_logits(smooth, b) - w).abs().mean()) for b, w in zip(probe, want))
    assert err_smooth < 0.5 * err_plain, (err_smooth, err_plain)
    assert isinstance(smooth.qa_outputs, torch.nn.Linear)  # the head stays fp32
    mods = dict(smooth.named_modules())
    assert all(type(mods[n]) is torch.nn.Linear for n in mods if n.endswith(".output.dense"))  # down projections fp32
    assert all(type(mods[f"{n}.linear"]) is not torch.nn.Linear for n in int8.smoothed_names(model))  # quantised


def test_smoothing_file_round_trip_and_refusals(tiny_mpnet, tmp_path):
    model = _model(tiny_mpnet)
    maxima = int8.activation_maxima(model, _batches(1))
    assert int8.load_smoothing(tmp_path) is None  # no file: plain int8
    int8.save_smoothing(tmp_path, maxima, alpha=0.7, info={"data": "x"})
    got = int8.load_smoothing(tmp_path)
    assert got["alpha"] == 0.7 and all(torch.equal(got["maxima"][k], maxima[k]) for k in maxima)
    with pytest.raises(ValueError, match="alpha"):
        int8.save_smoothing(tmp_path, maxima, alpha=1.5)
    wrong = {k: torch.ones(7) for k in maxima}
    with pytest.raises(rag.ModelError, match="does not fit this model.*calibrate_int8"):
        int8.smooth(copy.deepcopy(model), {"alpha": 0.8, "maxima": wrong})
    (tmp_path / int8.SMOOTHING_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(rag.ModelError, match="unreadable.*delete it.*calibrate_int8"):
        int8.load_smoothing(tmp_path)


def test_calibrate_on_training_articles_then_int8_uses_it(tiny_mpnet, tmp_path, capsys):
    folder = tmp_path / "reader"
    shutil.copytree(tiny_mpnet, folder)
    data = tmp_path / "tiny-squad.json"
    data.write_text(json.dumps(squad_fixture()), encoding="utf-8")
    out = calibrate_int8.calibrate(folder, data, questions=3, alpha=0.75)
    assert out["alpha"] == 0.75 and out["questions"] == 3 and out["windows"] >= 3
    assert out["split"].startswith("training articles")
    _, model = load_model(folder, precision="int8")  # the dev measurement's path
    assert any(isinstance(m, int8.SmoothedLinear) for m in model.modules())
    reader = NeuralReader(folder, precision="int8").warm_up()  # the reader's path
    assert any(isinstance(m, int8.SmoothedLinear) for m in reader._model.modules())
    res = reader.read("When was the Eiffel Tower completed?", [rag.Passage(
        chunk_id="c", doc_id="d", title="t", text="The Eiffel Tower was completed in 1889.", start=0, end=39,
        score=1.0)])
    assert 0.0 <= res.no_answer <= 1.0
    # refusals: test-only data, a folder with no reader, a bad alpha; nothing is written
    (folder / int8.SMOOTHING_FILE).unlink()
    shutil.copy(data, tmp_path / "squadshifts-new-wiki.json")
    assert calibrate_int8.main([str(folder), "--squad", str(tmp_path / "squadshifts-new-wiki.json")]) == 2
    assert "test-only" in capsys.readouterr().err
    assert calibrate_int8.main([str(tmp_path), "--squad", str(data)]) == 2
    assert "no reader in" in capsys.readouterr().err
    assert calibrate_int8.main([str(folder), "--squad", str(data), "--alpha", "2"]) == 2
    assert "--alpha" in capsys.readouterr().err
    assert not (folder / int8.SMOOTHING_FILE).exists()
