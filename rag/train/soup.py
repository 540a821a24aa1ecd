"""Average readers trained from the same base: a weight-space "soup" of adapters, shipped as one.

    python -m rag.train.soup A B [C ...] --out RUN [--weights 0.5,0.5]

Each of A, B, ... is an adapter folder (``adapter.json`` + ``adapter.safetensors``: a LoRA run's
``--export``, ``rag/models/reader_mpnet``, a compressed full fine-tune) over the same base. The
soup's weight change of every adapted Linear is the weighted mean of theirs,
``sum_i w_i * scaling_i * B_i @ A_i``, stored exactly, without a new SVD, by stacking the factors:
``B = [w_1 scaling_1 B_1 | w_2 scaling_2 B_2 | ...]``, ``A = [A_1; A_2; ...]``, scaling 1, so its rank
is the sum of theirs (two rank-16 adapters: rank 32, 10.6 MB in fp16). The QA head and any
whole tensors are the weighted means of theirs. ``RUN/export`` receives the adapter (the layout
``scripts/ship_reader.sh RUN`` reads) with a ``train_log.jsonl`` holding every ingredient's lines
once, in order, and a last line ``{"event": "soup", ...}`` naming the ingredients, their sha256 and
weights. Weights must be positive; they are scaled to sum to 1.

Why: runs warm-started from one another sit in one basin, and the mean of two that each win on a
different dev measure (stage 5 on the gold paragraph, stage 7 among near misses) may keep both.
Whether it does is for dev to say (``scripts/ship_reader.sh``), as for any other adapter.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import adapters
from ..encoders import file_sha256
from ..errors import InputError, ModelError


def soup_tensors(parts: Sequence[tuple[dict[str, Any], dict[str, Any]]], weights: Sequence[float]
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, config) of the weighted mean of the adapters ``parts`` ((tensors, meta) pairs as
    ``rag.adapters.read_adapter`` returns them), in fp32. ModelError when they do not share a base,
    adapted modules and whole tensors."""
    import torch

    if len(parts) != len(weights):
        raise InputError(f"{len(parts)} adapters but {len(weights)} weights: give one weight per adapter")
    if any(not w > 0 for w in weights):
        raise InputError(f"soup weights must be positive, got {list(weights)}")
    total = float(sum(weights))
    weights = [float(w) / total for w in weights]
    metas = [m for _, m in parts]
    first = metas[0]
    for m in metas[1:]:
        if m.get("base", {}).get("sha256") != first.get("base", {}).get("sha256"):
            raise ModelError("the adapters belong to different bases (adapter.json base.sha256 differs): "
                             "only adapters over the same base can be averaged")
        if sorted(m["modules"]) != sorted(first["modules"]) or sorted(m.get("full", [])) != sorted(first.get("full", [])):
            raise ModelError("the adapters adapt different modules or store different whole tensors: "
                             "average adapters trained with the same recipe")
    out: dict[str, Any] = {}
    for name in first["modules"]:
        out[f"{name}.lora_A"] = torch.cat([t[f"{name}.lora_A"].float() for t, _ in parts], 0)
        out[f"{name}.lora_B"] = torch.cat([w * float(m["scaling"]) * t[f"{name}.lora_B"].float()
                                           for w, (t, m) in zip(weights, parts)], 1)
    for name in [*first.get("full", []), f"{adapters.HEAD}.weight", f"{adapters.HEAD}.bias"]:
        out[name] = sum(w * t[name].float() for w, (t, _) in zip(weights, parts))
    rank = sum(int(m["rank"]) for m in metas)
    config = {**{k: v for k, v in adapters.adapter_config(first).items() if k != "compression"},
              "rank": rank, "alpha": float(rank), "scaling": 1.0}
    return out, config


def soup(folders: Sequence[str | Path], out_dir: str | Path, *, weights: Sequence[float] | None = None,
         dtype: str = "float16") -> dict[str, Any]:
    """Write the weighted mean of the adapters in ``folders`` to ``out_dir/export`` (see the module
    docstring); returns the ``soup`` record written as the log's last line."""
    if len(folders) < 2:
        raise InputError("give at least two adapter folders to average")
    weights = list(weights) if weights is not None else [1.0] * len(folders)
    folders = [Path(f) for f in folders]
    for f in folders:
        if not adapters.is_adapter_folder(f):
            raise ModelError(f"{f} holds no adapter.json and adapter.safetensors: pass folders written by "
                             "a LoRA run's --export (or rag/models/reader_mpnet)")
    parts = [adapters.read_adapter(f) for f in folders]
    tensors, config = soup_tensors(parts, weights)
    total = float(sum(weights))
    record = {"event": "soup", "rank": config["rank"],
              "ingredients": [{"path": str(f), "sha256": file_sha256(f / adapters.ADAPTER_FILE),
                               "rank": int(m["rank"]), "weight": round(w / total, 6)}
                              for f, (_, m), w in zip(folders, parts, weights)]}
    export = Path(out_dir) / "export"
    adapters.save_adapter(tensors, config, export, base=parts[0][1]["base"], dtype=dtype)
    lines: list[str] = []
    for f in folders:
        log = f / "train_log.jsonl"
        if log.is_file():
            for line in log.read_text(encoding="utf-8").splitlines():
                if line.strip() and line not in lines:
                    lines.append(line)
    lines.append(json.dumps(record))
    tmp = export / "train_log.jsonl.tmp"
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(export / "train_log.jsonl")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag.train.soup", description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", help="adapter folders over the same base")
    p.add_argument("--out", required=True, help="run folder; the soup goes to OUT/export")
    p.add_argument("--weights", help="comma-separated positive weights, one per folder (default: equal)")
    a = p.parse_args(argv)
    try:
        weights = [float(x) for x in a.weights.split(",")] if a.weights else None
    except ValueError:
        print(f"error: --weights must be comma-separated numbers, e.g. 0.5,0.5; got {a.weights!r}", file=sys.stderr)
        return 2
    try:
        record = soup(a.folders, a.out, weights=weights)
    except (InputError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
