"""Ship a fully fine-tuned reader small: the truncated SVD of each weight's change, as an adapter.

    python -m rag.train.compress RUN/final --out DIR [--rank R | --max-mb 25] [--base mpnet]

``RUN/final`` is a full fine-tune (``rag train-reader --encoder mpnet --freeze-embeddings``, no
``--lora-rank``). DIR receives ``adapter.safetensors`` (fp16) and ``adapter.json`` in the same format
as a LoRA run's export (``rag.adapters``), so ``rag.load(index, reader=DIR)``, ``NeuralReader`` and
``scripts/ship_reader.sh`` read it unchanged: merged into the base at load, one plain forward.
``--max-mb`` takes the largest rank whose file fits (MB = 10^6 bytes); ``--rank`` names one.
Prints the rank, the size and how much of the weight changes the factors keep.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import adapters
from ..errors import ModelError


def rank_for_size(base_model, max_bytes: int, whole: int) -> int:
    """The largest rank whose fp16 adapter over ``base_model``'s adapted Linear layers, plus
    ``whole`` numbers stored in full, takes at most ``max_bytes``. ModelError when not even rank 1
    fits."""
    mods = dict(base_model.named_modules())
    shapes = {n: tuple(mods[n].weight.shape) for n in adapters.adapted_module_names(base_model)}
    per_rank = adapters.adapter_bytes(shapes, 1, 0)
    rank = (max_bytes - adapters.adapter_bytes(shapes, 0, whole)) // per_rank
    if rank < 1:
        raise ModelError(f"no adapter fits in {max_bytes / 1e6:g} MB (rank 1 takes "
                         f"{adapters.adapter_bytes(shapes, 1, whole) / 1e6:.2f} MB): raise --max-mb")
    return int(min(rank, min(min(s) for s in shapes.values())))


def compress(tuned_dir: str | Path, out_dir: str | Path, *, base: str = "mpnet", rank: int | None = None,
             max_mb: float | None = 25.0) -> dict[str, Any]:
    """Compress the full fine-tune in ``tuned_dir`` against ``base`` (``"mpnet"``, ``"minilm"``, a
    model folder or a hub id, as ``rag train-reader --encoder`` takes it) into an fp16 adapter in
    ``out_dir`` (written whole, then renamed into place); returns what ``adapter.json`` records
    about it plus its size. ``rank`` wins over ``max_mb``."""
    from transformers import AutoModelForQuestionAnswering

    from .. import encoders
    from .neural import base_description

    tuned_dir, out = Path(tuned_dir), Path(out_dir)
    if adapters.is_adapter_folder(tuned_dir):
        raise ModelError(f"{tuned_dir} already holds an adapter: compress a full fine-tune (a run without "
                         "--lora-rank), e.g. RUN/final")
    if not (tuned_dir / "config.json").is_file():
        raise ModelError(f"no fine-tuned model in {tuned_dir} (config.json missing): pass a full fine-tune's "
                         "final/ folder")
    if rank is None and max_mb is None:
        raise ModelError("give --rank or --max-mb")
    base_src = encoders.resolve_encoder(base)
    base_model = AutoModelForQuestionAnswering.from_pretrained(base_src).float().eval()
    tuned_model = AutoModelForQuestionAnswering.from_pretrained(str(tuned_dir)).float().eval()
    fit = rank is None
    if fit:
        # at most every tensor an adapter may store whole (head, biases, LayerNorms)
        params = dict(base_model.named_parameters())
        whole = sum(params[n].numel() for n in adapters.whole_tensor_names(base_model))
        rank = rank_for_size(base_model, int(max_mb * 1e6), whole)
    tmp = out.with_name(out.name + ".tmp")
    svds: dict[str, Any] = {}  # decomposed once; a lower rank only truncates
    while True:
        tensors, config = adapters.svd_adapter(base_model, tuned_model, rank, svds)
        if tmp.exists():
            shutil.rmtree(tmp)
        adapters.save_adapter(tensors, config, tmp, base=base_description(base, base_src), dtype="float16")
        size = (tmp / adapters.ADAPTER_FILE).stat().st_size
        if not (fit and rank > 1 and size > max_mb * 1e6):
            break
        rank -= 1  # the file's header (names, shapes) is not in the estimate: one rank less, again
    if max_mb is not None and size > max_mb * 1e6:
        shutil.rmtree(tmp)  # whatever stood in out_dir stays as it was
        raise ModelError(f"the rank-{rank} adapter takes {size / 1e6:.1f} MB, over --max-mb {max_mb:g}: "
                         "lower --rank")
    log = tuned_dir / "train_log.jsonl"
    if log.is_file():  # the fine-tune's history travels with the adapter, as a LoRA export's does
        shutil.copyfile(log, tmp / "train_log.jsonl")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return {**config["compression"], "whole_tensors": len(config["full"]), "bytes": size, "out": str(out)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rag.train.compress", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tuned", help="a full fine-tune's model folder (RUN/final)")
    ap.add_argument("--out", required=True, help="the adapter folder to write")
    ap.add_argument("--base", default="mpnet", help="the base it was fine-tuned from (default: mpnet)")
    ap.add_argument("--rank", type=int, default=None, help="the SVD rank (default: the largest that fits --max-mb)")
    ap.add_argument("--max-mb", type=float, default=25.0, help="size limit of adapter.safetensors (default 25)")
    a = ap.parse_args(argv)
    try:
        info = compress(a.tuned, a.out, base=a.base, rank=a.rank, max_mb=a.max_mb)
    except ModelError as e:
        print(f"rag.train.compress: {e}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
