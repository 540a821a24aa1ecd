"""rag.train.precision: the precision kept for a shipped reader, and the all-dev recheck of a near refusal."""
from __future__ import annotations

import json

from rag.train import precision as P


def fake(scores):
    """An evaluate_model stand-in: (precision, "sample" or "all") -> (HasAns span F1, best F1, seconds),
    in percent as evaluate_model gives them; the calls are recorded."""
    calls = []

    def evaluate(model_dir, pool, *, titles, sample, precision, progress):
        calls.append((precision, "all" if sample is None else "sample"))
        f1, best, secs = scores[(precision, calls[-1][1])]
        return {"HasAns_f1_span": f1, "best_f1": best, "seconds": secs}
    return evaluate, calls


def test_a_clear_loss_keeps_fp32_and_a_clear_pass_keeps_the_cheaper_one_without_a_recheck():
    evaluate, calls = fake({("fp32", "sample"): (82.0, 73.0, 50), ("int8", "sample"): (79.0, 70.0, 40),
                            ("bf16", "sample"): (81.9, 72.8, 18)})
    out = P.measure("m", "pool", sample=300, native_bf16=True, titles=["T"], evaluate=evaluate)
    assert out["cpu_precision"] == "fp32" and out["native_bf16_precision"] == "bf16"
    assert "measured_all_dev" not in out and calls == [("fp32", "sample"), ("int8", "sample"), ("bf16", "sample")]
    assert out["measured"]["int8"] == {"hasans_f1_span": 0.79, "best_f1": 0.7, "seconds": 40}


def test_a_refusal_by_a_few_thousandths_is_measured_again_on_all_of_dev():
    # the 2026-12-07 case: bf16 lost 0.0070 best F1 on 300 questions and nothing on all 3,751
    evaluate, calls = fake({("fp32", "sample"): (82.24, 73.12, 55), ("int8", "sample"): (81.63, 71.93, 42),
                            ("bf16", "sample"): (81.76, 72.42, 19),
                            ("fp32", "all"): (82.22, 72.42, 562), ("bf16", "all"): (82.28, 72.47, 202)})
    out = P.measure("m", "pool", sample=300, native_bf16=True, titles=["T"], evaluate=evaluate)
    assert out["native_bf16_precision"] == "bf16" and out["cpu_precision"] == "fp32"  # int8 lost 0.012: no recheck
    assert calls[3:] == [("fp32", "all"), ("bf16", "all")]
    assert out["measured_all_dev"]["bf16"]["best_f1"] == 0.7247 and out["measured"]["bf16"]["best_f1"] == 0.7242


def test_all_of_dev_can_confirm_the_refusal():
    evaluate, _ = fake({("fp32", "sample"): (82.0, 73.0, 50), ("int8", "sample"): (81.5, 72.2, 40),
                        ("fp32", "all"): (82.0, 72.5, 500), ("int8", "all"): (81.0, 71.5, 400)})
    out = P.measure("m", "pool", sample=300, native_bf16=False, titles=["T"], evaluate=evaluate)
    assert out["cpu_precision"] == "fp32" and "native_bf16_precision" not in out
    assert set(out["measured_all_dev"]) == {"fp32", "int8"}


def test_measured_on_all_of_dev_from_the_start_needs_no_recheck():
    evaluate, calls = fake({("fp32", "all"): (82.0, 73.0, 50), ("int8", "all"): (81.5, 72.5, 40)})
    out = P.measure("m", "pool", sample=None, native_bf16=False, titles=["T"], evaluate=evaluate)
    assert out["cpu_precision"] == "fp32" and len(calls) == 2 and "measured_all_dev" not in out


def test_the_command_writes_inference_json_that_the_reader_loads_by(tiny_mpnet, tiny_squad, tmp_path, monkeypatch):
    import shutil

    from rag.readers import neural

    model = tmp_path / "reader"
    shutil.copytree(tiny_mpnet, model)
    monkeypatch.setattr(neural, "cpu_has_native_bf16", lambda: True)
    assert P.main([str(model), "--squad", str(tiny_squad), "--sample", "0"]) == 0
    kept = json.loads((model / "inference.json").read_text())
    assert set(kept["measured"]) == {"fp32", "int8", "bf16"} and kept["questions"] is None
    assert all(0.0 <= m["best_f1"] <= 1.0 for m in kept["measured"].values())
    assert kept["native_bf16_precision"] in ("fp32", "bf16") and kept["cpu_precision"] in ("fp32", "int8")
    monkeypatch.delenv("RAG_READER_PRECISION", raising=False)
    assert neural.choose_precision("auto", "cpu", model) == kept["native_bf16_precision"]
