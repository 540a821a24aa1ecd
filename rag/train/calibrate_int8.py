"""Measure the activation maxima int8 smoothing needs, on training questions, into a model folder.

    python -m rag.train.calibrate_int8 rag/models/reader_mpnet --squad ../shared/data/squad-pool.json.gz

Runs the folder's model (fp32; a LoRA adapter merged into its base) over the windows of
``--questions`` questions drawn with ``--seed`` from the data's training articles (never the fixed
dev articles, which judge whether int8 is kept), records the largest |activation| of each input
channel of each quantised Linear layer, and writes them with ``--alpha`` as
``int8_smoothing.safetensors`` (``rag.readers.int8``). From then on ``precision="int8"`` (or
``RAG_READER_PRECISION=int8``) quantises that reader smoothed. ``scripts/ship_reader.sh`` runs it
before it measures int8 against fp32 on dev.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelError


def calibrate(model_dir: str | Path, data: str | Path, *, questions: int = 64, seed: int = 7,
              alpha: float | None = None, max_length: int = 384, stride: int = 128,
              batch_size: int = 16) -> dict[str, Any]:
    """Write ``int8_smoothing.safetensors`` into ``model_dir``; returns what it records."""
    from .. import adapters
    from ..eval.datasets import squad_articles
    from ..readers import int8
    from .neural import collate, featurize, flatten, is_test_only, load_model, resolve_dev_titles

    if is_test_only(data):
        raise InputError(f"{data} is test-only data (../shared/data/README.md): calibrate on training data, "
                         "e.g. ../shared/data/squad-pool.json.gz")
    if questions < 1:
        raise InputError(f"--questions must be at least 1, got {questions}")
    if not (Path(model_dir) / "config.json").is_file() and not adapters.is_adapter_folder(model_dir):
        raise ModelError(f"no reader in {model_dir} (neither config.json nor adapter.json): pass a QA model folder "
                         "or a rag LoRA adapter folder such as rag/models/reader_mpnet")
    alpha = int8.DEFAULT_ALPHA if alpha is None else alpha
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"--alpha must lie in [0, 1], got {alpha}")
    arts = squad_articles(data)
    dev = set(resolve_dev_titles(arts))
    train = flatten([a for a in arts if a["title"] not in dev])
    if not train:
        raise InputError(f"{data} has no articles outside the dev titles to calibrate on")
    picked = random.Random(seed).sample(train, min(questions, len(train)))
    tok, model = load_model(model_dir, precision="fp32")
    feats = featurize(picked, tok, max_length=max_length, stride=stride, train=False)
    pad = tok.pad_token_id or 0
    batches = (collate(feats[i: i + batch_size], pad, with_labels=False) for i in range(0, len(feats), batch_size))
    t0 = time.time()
    maxima = int8.activation_maxima(model, batches)
    info = {"data": Path(data).name, "questions": len(picked), "windows": len(feats), "seed": seed,
            "max_length": max_length, "split": "training articles (not the dev titles)",
            "date": time.strftime("%Y-%m-%d"), "seconds": round(time.time() - t0, 1)}
    path = int8.save_smoothing(model_dir, maxima, alpha=alpha, info=info)
    worst = max(maxima.items(), key=lambda kv: float(kv[1].max()))
    return {"file": str(path), "alpha": alpha, "layers": len(maxima), **info,
            "largest_activation": {"layer": worst[0], "abs_max": round(float(worst[1].max()), 1)}}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rag.train.calibrate_int8", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a reader folder (a QA model or a rag LoRA adapter), e.g. rag/models/reader_mpnet")
    ap.add_argument("--squad", required=True, help="SQuAD 2.0 JSON(.gz) whose training articles calibrate")
    ap.add_argument("--questions", type=int, default=64)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--alpha", type=float, default=None, help="migration strength (default: rag.readers.int8.DEFAULT_ALPHA)")
    a = ap.parse_args(argv)
    try:
        out = calibrate(a.model, a.squad, questions=a.questions, seed=a.seed, alpha=a.alpha)
    except (InputError, ModelError, FileNotFoundError) as e:
        print(f"rag.train.calibrate_int8: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
