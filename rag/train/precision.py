"""The precision a shipped reader runs in on a CPU, measured on SQuAD dev (``inference.json``).

``python -m rag.train.precision MODEL_DIR --squad POOL [--sample N]`` scores the same held-out
SQuAD dev questions (gold paragraph) in fp32, int8 and, on a CPU that computes it natively, bf16,
and writes what ``rag.readers.neural.keep_precision`` keeps into ``MODEL_DIR/inference.json``
(read by ``choose_precision`` at load). A sample is cheap but noisy: on 2026-12-07 300 questions
said bf16 lost 0.007 best F1 against fp32 (over the 0.005 rule) where all 3,751 said it lost
nothing. So a cheaper precision refused on the sample by at most ``RECHECK_MARGIN`` is measured
again, with fp32, on all the dev questions, and that measurement decides.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RECHECK_MARGIN = 0.01  # a refusal by at most this much F1 on the sample is measured again on all of dev


def _summary(m: dict[str, Any]) -> dict[str, float]:
    return {"hasans_f1_span": round(m["HasAns_f1_span"] / 100, 4), "best_f1": round(m["best_f1"] / 100, 4),
            "seconds": m["seconds"]}


def measure(model_dir: str | Path, pool: str | Path, *, sample: int | None, native_bf16: bool,
            titles: Sequence[str] | None = None,
            evaluate: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    """What ``inference.json`` holds for ``model_dir``: the kept precisions and the measurements
    behind them, on ``sample`` questions (None: all) of the ``titles`` articles of ``pool`` (default
    the fixed dev titles). ``evaluate``: ``rag.train.neural.evaluate_model`` (replaceable in tests)."""
    from ..eval.datasets import squad_articles
    from ..readers.neural import MAX_PRECISION_LOSS, keep_precision
    from .neural import evaluate_model, resolve_dev_titles

    evaluate = evaluate or evaluate_model
    titles = list(titles) if titles is not None else resolve_dev_titles(squad_articles(pool))

    def run(precision: str, n: int | None) -> dict[str, float]:
        return _summary(evaluate(model_dir, pool, titles=titles, sample=n, precision=precision, progress=False))

    runs = ("fp32", "int8", "bf16") if native_bf16 else ("fp32", "int8")
    measured = {q: run(q, sample) for q in runs}
    keys = {"int8": "cpu_precision", "bf16": "native_bf16_precision"}
    out: dict[str, Any] = {keys[q]: keep_precision(measured, q) for q in runs[1:]}
    out.update(rule=f"a cheaper precision where it loses at most {MAX_PRECISION_LOSS} F1 on SQuAD dev and is faster "
                    "than fp32: int8 on CPUs without native bf16 (cpu_precision), bf16 on CPUs with it "
                    "(native_bf16_precision; rag.readers.neural.choose_precision); one refused on the sample by "
                    f"at most {RECHECK_MARGIN} is measured again on all dev questions, which decide",
               measured=measured, questions=sample)
    # Refused on the sample, but kept at the wider margin: a refusal the sample's noise could explain.
    recheck = [q for q in runs[1:] if sample is not None and out[keys[q]] == "fp32"
               and keep_precision(measured, q, max_loss=RECHECK_MARGIN) == q]
    if recheck:
        full = {"fp32": run("fp32", None), **{q: run(q, None) for q in recheck}}
        out["measured_all_dev"] = full
        for q in recheck:
            out[keys[q]] = keep_precision(full, q)
    out["date"] = time.strftime("%Y-%m-%d")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from ..readers.neural import cpu_has_native_bf16

    p = argparse.ArgumentParser(prog="python -m rag.train.precision", description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", help="a reader folder (e.g. rag/models/reader_mpnet)")
    p.add_argument("--squad", required=True, help="the SQuAD pool whose held-out dev articles are scored")
    p.add_argument("--sample", type=int, default=400, help="dev questions scored first (0: all of them)")
    args = p.parse_args(argv)
    out = measure(args.model_dir, args.squad, sample=args.sample or None, native_bf16=cpu_has_native_bf16())
    (Path(args.model_dir) / "inference.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
