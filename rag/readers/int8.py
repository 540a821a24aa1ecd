"""Dynamic int8 quantisation of a reader, with activation smoothing where the model folder has it.

Plain dynamic quantisation (int8 weights, each activation quantised on the fly with one scale per
tensor) breaks MPNet: a few hidden channels carry activations 50-100x larger than the rest, so one
per-tensor scale leaves the others a handful of levels (SQuAD dev HasAns F1 0.822 -> 0.513).
SmoothQuant (Xiao et al. 2023) moves that range from the activations into the weights, exactly:
for a Linear ``y = W x`` and per-input-channel factors ``s``, ``y = (W diag(s)) (x / s)``, with

    s_j = max|x_j| ** alpha / max|W[:, j]| ** (1 - alpha)

from the largest activation each input channel reached on calibration windows (training data,
never dev). The weights ``W diag(s)`` are quantised per output channel; ``x / s`` is one
elementwise multiply before the quantised matmul. MPNet is a post-LayerNorm network (a block's
input is also its residual), so ``1 / s`` cannot be folded into the LayerNorm before it: it stays
a multiply. The feed-forward down projections, whose inputs (GELU outputs) hold the worst outliers,
stay fp32 with the QA head (``smoothed_names``).

The maxima live in the model folder as ``int8_smoothing.safetensors`` (one vector per Linear input,
fp32, alpha in its metadata), written by ``python -m rag.train.calibrate_int8``. A folder without
that file is quantised the plain way, as before. Imported only where a reader runs in int8 (it
imports torch).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Iterable

import torch

from ..errors import ModelError

SMOOTHING_FILE = "int8_smoothing.safetensors"
# chosen on 200 SQuAD dev questions (seed 29, not the 300 that judge int8 in inference.json), MPNet
# reader, alpha 0.5 / 0.7 / 0.8 / 0.9: HasAns F1 0.547 / 0.794 / 0.801 / 0.785, best F1 0.483 / 0.709 /
# 0.700 / 0.691 (fp32 0.812 / 0.755; evals/README.md, 2026-12-06 third session)
DEFAULT_ALPHA = 0.8
HEAD = "qa_outputs"  # the QA head (2 outputs) stays fp32: too small to gain, easy to hurt


def linear_names(model) -> list[str]:
    """Every Linear layer but the QA head: the ones calibration measures."""
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and not n.startswith(HEAD)]


def smoothed_names(model) -> list[str]:
    """The Linear layers smoothed int8 quantises: all of ``linear_names`` but the feed-forward down
    projections (more inputs than outputs: 3072 -> 768 in MPNet). Their inputs, GELU outputs, hold
    the largest outliers (|x| up to 95 against a few elsewhere); kept fp32 they cost a third of the
    int8 speed-up and remove the loss: on 200 SQuAD dev questions (seed 29) smoothed int8 with them
    fp32 scored 0.831 / 0.734 (HasAns F1 / best F1) in 36 s against fp32's 0.819 / 0.734 in 58 s,
    and 0.809 / 0.694 in 29 s with them quantised too."""
    mods = dict(model.named_modules())
    return [n for n in linear_names(model) if mods[n].in_features <= mods[n].out_features]


def activation_maxima(model, batches: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The largest |activation| each input channel of each ``linear_names`` layer reaches over
    ``batches`` (model keyword arguments, e.g. ``input_ids`` and ``attention_mask``); fp32 vectors."""
    mods = dict(model.named_modules())
    maxima: dict[str, Any] = {}

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0].detach().float().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            maxima[name] = torch.maximum(maxima[name], x) if name in maxima else x
        return record

    handles = [mods[n].register_forward_hook(hook(n)) for n in linear_names(model)]
    try:
        with torch.inference_mode():
            for batch in batches:
                model(**batch)
    finally:
        for h in handles:
            h.remove()
    return maxima


def save_smoothing(folder: str | Path, maxima: dict[str, Any], *, alpha: float = DEFAULT_ALPHA,
                   info: dict[str, Any] | None = None) -> Path:
    """Write ``maxima`` and ``alpha`` (and ``info``: how they were measured) into ``folder``."""
    from safetensors.torch import save_file

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    path = Path(folder) / SMOOTHING_FILE
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in maxima.items()}, str(tmp),
              metadata={"alpha": repr(float(alpha)), "info": json.dumps(info or {})})
    tmp.replace(path)
    return path


def load_smoothing(folder: str | Path) -> dict[str, Any] | None:
    """``{"alpha": float, "maxima": {layer: tensor}}`` from ``folder``, or None when it has none.
    ModelError when the file is unreadable (delete it, or rerun the calibration)."""
    path = Path(folder) / SMOOTHING_FILE
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            maxima = {k: f.get_tensor(k) for k in f.keys()}
        alpha = float(meta["alpha"])
    except Exception as e:  # noqa: BLE001 - a damaged file means one thing to the user
        raise ModelError(f"{path} is unreadable ({e}): delete it (int8 then quantises without smoothing) or "
                         f"rerun python -m rag.train.calibrate_int8 {folder}") from e
    return {"alpha": alpha, "maxima": maxima}


class SmoothedLinear(torch.nn.Module):
    """``linear(x * inv_scale)``: the activation side of SmoothQuant."""

    def __init__(self, linear, inv_scale):
        super().__init__()
        self.linear = linear
        self.register_buffer("inv_scale", inv_scale)

    def forward(self, x):
        return self.linear(x * self.inv_scale.to(x.dtype))


def smooth(model, smoothing: dict[str, Any]) -> list[str]:
    """Rescale every ``smoothed_names`` layer of ``model`` in place (weights times ``s``, each
    wrapped to divide its input by ``s``); returns their names. ModelError when the maxima do not
    fit the model."""
    alpha, maxima = smoothing["alpha"], smoothing["maxima"]
    names = smoothed_names(model)
    mods = dict(model.named_modules())
    missing = [n for n in names if n not in maxima or maxima[n].numel() != mods[n].in_features]
    if missing:
        raise ModelError(f"{SMOOTHING_FILE} does not fit this model (no or wrong-sized maxima for {missing[0]}, ...): "
                         "rerun python -m rag.train.calibrate_int8 on this model folder")
    with torch.no_grad():
        for n in names:
            lin = mods[n]
            a = maxima[n].float().clamp(min=1e-5)
            w = lin.weight.detach().float().abs().amax(0).clamp(min=1e-5)
            s = (a.pow(alpha) / w.pow(1.0 - alpha)).clamp(min=1e-5)
            lin.weight.mul_(s.to(lin.weight.dtype))
            parent_name, _, child = n.rpartition(".")
            setattr(mods[parent_name] if parent_name else model, child, SmoothedLinear(lin, 1.0 / s))
    return names


def quantize_int8(model, smoothing: dict[str, Any] | None = None):
    """Dynamic int8 quantisation for CPU inference. With ``smoothing`` (``load_smoothing``): the
    ``smoothed_names`` layers smoothed, then quantised with per-output-channel weight scales; the
    feed-forward down projections and the QA head stay fp32. Without: every Linear layer quantised
    per tensor (the older behaviour). torch marks eager-mode quantisation deprecated: warnings are
    muted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if smoothing is None:
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        names = smooth(model, smoothing)
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        spec = {f"{n}.linear": qconfig for n in names}
        return torch.ao.quantization.quantize_dynamic(model, spec)
