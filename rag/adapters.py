"""Low-rank adapters for an extractive-QA reader: attach (peft LoRA), ship small, merge at load.

A reader trained with LoRA is shipped as its adapter: the low-rank factors ``A`` (r x in) and
``B`` (out x r) of every adapted Linear layer (attention and feed-forward projections of every
encoder layer) plus the fully trained QA head, in one fp16 ``adapter.safetensors`` with an
``adapter.json`` saying which base it belongs to (name and the base weights' sha256), the rank,
the scaling and the adapted modules. ``load_merged`` rebuilds the base, adds ``scaling * B @ A``
to each adapted weight (the arithmetic of peft's ``merge_and_unload``) and installs the head, so
answering runs one plain forward of the base architecture with no peft in the loop.

The same format also carries a *fully* fine-tuned reader, compressed (``svd_adapter``): each
adapted weight's difference to the base, ``W_tuned - W_base``, cut to its best rank-r
approximation by a truncated SVD (``B = U_r sqrt(S_r)``, ``A = sqrt(S_r) V_r^T``, scaling 1), and
the few small tensors a full fine-tune also moves (biases, LayerNorms) stored whole under
``full``. The embeddings must not have moved (train with ``--freeze-embeddings``): a vocabulary-
sized delta is what the adapter exists to avoid.

peft is needed for training only; loading a shipped adapter needs torch, transformers and
safetensors.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .errors import ModelError

ADAPTER_FILE = "adapter.safetensors"
ADAPTER_CONFIG = "adapter.json"
# Every Linear of every encoder layer: q/k/v/o (MPNet), query/key/value/dense (BERT-style),
# intermediate and output dense (feed-forward). The QA head (qa_outputs) is trained fully.
TARGET_REGEX = r".*encoder\.layer\.\d+\..*\.(q|k|v|o|query|key|value|dense)$"
HEAD = "qa_outputs"


def attach_lora(model, *, rank: int, alpha: float | None = None, dropout: float = 0.05):
    """Wrap ``model`` (an AutoModelForQuestionAnswering) in a peft LoRA model: rank ``rank`` on
    every attention and feed-forward projection, the QA head trained and saved in full."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ModelError("LoRA training needs peft: bash scripts/setup.sh (or pip install peft)") from None
    cfg = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else 2 * rank, lora_dropout=dropout,
                     target_modules=TARGET_REGEX, modules_to_save=[HEAD], bias="none")
    return get_peft_model(model, cfg)


def lora_state(peft_model) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, config) of a peft LoRA model in this module's plain format: for each adapted
    module ``M`` the tensors ``M.lora_A`` and ``M.lora_B``, and the head as ``qa_outputs.weight``
    / ``qa_outputs.bias``; names are those of the base model."""
    import torch

    cfg = peft_model.peft_config["default"]
    base = peft_model.get_base_model()
    tensors: dict[str, torch.Tensor] = {}
    modules = []
    for name, mod in base.named_modules():
        if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
            tensors[f"{name}.lora_A"] = mod.lora_A["default"].weight.detach().float().cpu().contiguous()
            tensors[f"{name}.lora_B"] = mod.lora_B["default"].weight.detach().float().cpu().contiguous()
            modules.append(name)
    head = getattr(base, HEAD)
    head = head.modules_to_save["default"] if hasattr(head, "modules_to_save") else head
    tensors[f"{HEAD}.weight"] = head.weight.detach().float().cpu().contiguous()
    tensors[f"{HEAD}.bias"] = head.bias.detach().float().cpu().contiguous()
    config = {"format": "rag-lora/1", "rank": int(cfg.r), "alpha": float(cfg.lora_alpha),
              "scaling": float(cfg.lora_alpha) / float(cfg.r), "modules": sorted(modules)}
    return tensors, config


def load_lora_weights(peft_model, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Start a peft LoRA model from a saved adapter (a warm start): its ``lora_A``/``lora_B`` factors
    and QA head copied in. ModelError when the rank, alpha or modules differ from the model's, or
    when the adapter carries whole tensors (``full``, from ``svd_adapter``), which a LoRA run
    neither trains nor saves."""
    import torch

    if meta.get("full"):
        raise ModelError("this adapter is a compressed full fine-tune (it carries whole bias/LayerNorm tensors "
                         "that LoRA does not train or save): a LoRA run cannot start from it; continue the full "
                         "fine-tune instead, or start LoRA from a LoRA adapter")
    cfg = peft_model.peft_config["default"]
    if int(cfg.r) != int(meta["rank"]) or float(cfg.lora_alpha) != float(meta["alpha"]):
        raise ModelError(f"the adapter to start from has rank {meta['rank']} and alpha {meta['alpha']}, the run "
                         f"rank {cfg.r} and alpha {cfg.lora_alpha}: pass --lora-rank {meta['rank']} "
                         f"--lora-alpha {meta['alpha']:g}")
    mods = dict(peft_model.get_base_model().named_modules())
    ours = sorted(n for n, m in mods.items() if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {}))
    if ours != sorted(meta["modules"]):
        raise ModelError("the adapter to start from adapts other modules than this run: it belongs to another "
                         "base or another adapter layout")
    with torch.no_grad():
        for name in ours:
            for part in ("lora_A", "lora_B"):
                w = getattr(mods[name], part)["default"].weight
                t = tensors[f"{name}.{part}"]
                if tuple(t.shape) != tuple(w.shape):
                    raise ModelError(f"adapter factor {name}.{part} has shape {tuple(t.shape)}, the run's "
                                     f"{tuple(w.shape)}: the adapter belongs to another base")
                w.copy_(t.to(w.dtype))
        head = mods[HEAD]
        head = head.modules_to_save["default"] if hasattr(head, "modules_to_save") else head
        head.weight.copy_(tensors[f"{HEAD}.weight"].to(head.weight.dtype))
        head.bias.copy_(tensors[f"{HEAD}.bias"].to(head.bias.dtype))


def save_adapter(tensors: dict[str, Any], config: dict[str, Any], out_dir: str | os.PathLike, *,
                 base: dict[str, Any], dtype: str = "float16") -> Path:
    """Write ``adapter.safetensors`` (``dtype``) and ``adapter.json`` (with ``base``: name, sha256,
    how to get it) to ``out_dir``, each through a temp file and a rename."""
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dt = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[dtype]
    tmp = out / (ADAPTER_FILE + ".tmp")
    save_file({k: v.to(dt).contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, out / ADAPTER_FILE)
    meta = {**config, "dtype": dtype, "base": base}
    tmpj = out / (ADAPTER_CONFIG + ".tmp")
    tmpj.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    os.replace(tmpj, out / ADAPTER_CONFIG)
    return out


def is_embedding(name: str) -> bool:
    """Whether parameter ``name`` belongs to the embeddings, which no adapter carries (LoRA never
    trains them; a full fine-tune meant for ``svd_adapter`` keeps them frozen)."""
    return ".embeddings." in f".{name}"


def whole_tensor_names(model) -> list[str]:
    """The parameters an adapter over ``model`` would store whole rather than as factors: all but
    the factored Linear weights and the embeddings (biases, LayerNorms, the QA head)."""
    factored = {f"{m}.weight" for m in adapted_module_names(model)}
    return [n for n, _ in model.named_parameters() if n not in factored and not is_embedding(n)]


def adapter_config(meta: dict[str, Any]) -> dict[str, Any]:
    """The part of an adapter's ``adapter.json`` that describes its tensors (what ``save_adapter``
    takes as ``config``): format, rank, alpha, scaling, modules and, where present, ``full`` and
    ``compression``; not the dtype or the base, which ``save_adapter`` writes itself."""
    return {k: meta[k] for k in ("format", "rank", "alpha", "scaling", "modules", "full", "compression")
            if k in meta}


def adapter_bytes(shapes: dict[str, tuple[int, int]], rank: int, whole: int, bytes_per: int = 2) -> int:
    """Bytes of the tensors of an adapter of ``rank`` over Linear weights of ``shapes`` (name ->
    (out, in)) plus ``whole`` numbers stored in full (head, biases, LayerNorms), ``bytes_per`` each."""
    return bytes_per * (sum(rank * (o + i) for o, i in shapes.values()) + whole)


def svd_adapter(base_model, tuned_model, rank: int, svds: dict[str, Any] | None = None
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, config) compressing a fully fine-tuned ``tuned_model`` against ``base_model`` (both
    AutoModelForQuestionAnswering of one architecture) into this module's adapter format.

    Every Linear ``TARGET_REGEX`` selects gets the rank-``rank`` truncated SVD of its weight
    difference (scaling 1: ``alpha == rank``); every other tensor the fine-tune changed, but for the
    embeddings, is stored whole (``full``: biases, LayerNorms); the QA head is stored as it is.
    ``config["compression"]`` records the rank and how much of each difference the factors keep
    (relative Frobenius error, mean and worst). ModelError when the embeddings changed (train with
    ``--freeze-embeddings``) or the two models do not share parameter names and shapes.
    ``svds``: a dict that keeps each module's decomposition between calls on the same two models, so
    trying a lower rank truncates instead of decomposing again.
    """
    import torch

    if rank < 1:
        raise ModelError(f"the SVD rank must be at least 1, got {rank}")
    base = dict(base_model.named_parameters())
    tuned = dict(tuned_model.named_parameters())
    if base.keys() != tuned.keys() or any(base[k].shape != tuned[k].shape for k in base):
        raise ModelError("the fine-tuned model and the base do not have the same parameters: compress a model "
                         "fine-tuned from this base")
    moved = [k for k in base if is_embedding(k) and not torch.equal(base[k], tuned[k])]
    if moved:
        raise ModelError(f"the fine-tune changed the embeddings ({moved[0]}, ...): an adapter does not carry a "
                         "vocabulary-sized delta; train with --freeze-embeddings")
    modules = adapted_module_names(base_model)
    tensors: dict[str, Any] = {}
    errors = []
    with torch.no_grad():
        for name in modules:
            d = tuned[f"{name}.weight"].detach().float() - base[f"{name}.weight"].detach().float()
            if svds is not None and name in svds:
                u, s, vh = svds[name]
            else:
                u, s, vh = torch.linalg.svd(d, full_matrices=False)
                if svds is not None:
                    svds[name] = (u, s, vh)
            r = min(rank, s.numel())
            root = s[:r].sqrt()
            b, a = u[:, :r] * root, root[:, None] * vh[:r]
            if r < rank:  # a tiny layer: pad with zeros so every module has the adapter's rank
                b = torch.cat([b, b.new_zeros(b.shape[0], rank - r)], 1)
                a = torch.cat([a, a.new_zeros(rank - r, a.shape[1])], 0)
            tensors[f"{name}.lora_A"], tensors[f"{name}.lora_B"] = a.contiguous(), b.contiguous()
            norm = float(d.norm())
            errors.append(float((d - b @ a).norm()) / norm if norm > 0 else 0.0)
        full = sorted(k for k in whole_tensor_names(base_model)
                      if not k.startswith(f"{HEAD}.") and not torch.equal(base[k], tuned[k]))
        for k in full:
            tensors[k] = tuned[k].detach().float().contiguous()
        head = getattr(tuned_model, HEAD)
        tensors[f"{HEAD}.weight"] = head.weight.detach().float().contiguous()
        tensors[f"{HEAD}.bias"] = head.bias.detach().float().contiguous()
    config = {"format": "rag-lora/1", "rank": int(rank), "alpha": float(rank), "scaling": 1.0,
              "modules": sorted(modules), "full": full,
              "compression": {"method": "truncated SVD of each weight's difference to the base",
                              "rank": int(rank),
                              "relative_error_mean": round(sum(errors) / max(len(errors), 1), 4),
                              "relative_error_max": round(max(errors, default=0.0), 4)}}
    return tensors, config


def is_adapter_folder(folder: str | os.PathLike) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file() and (Path(folder) / ADAPTER_FILE).is_file()


def read_adapter(folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / ADAPTER_FILE))
    except (OSError, ValueError) as e:
        raise ModelError(f"the reader adapter in {folder} cannot be read ({e}): reinstall the package or "
                         f"retrain it with rag train-reader") from None
    if meta.get("format") != "rag-lora/1":
        raise ModelError(f"{folder / ADAPTER_CONFIG} is not a rag LoRA adapter (format {meta.get('format')!r})")
    return tensors, meta


def merge_into(model, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Add ``scaling * B @ A`` to every adapted Linear of ``model`` (in place, fp32) and install the
    QA head. ModelError when a module named by the adapter is missing or has another shape."""
    import torch

    mods = dict(model.named_modules())
    scaling = float(meta["scaling"])
    with torch.no_grad():
        for name in meta["modules"]:
            lin = mods.get(name)
            a, b = tensors.get(f"{name}.lora_A"), tensors.get(f"{name}.lora_B")
            if lin is None or a is None or b is None:
                raise ModelError(f"the adapter names {name!r}, which the base model does not have (or its "
                                 f"factors are missing): the adapter belongs to another base")
            delta = b.float() @ a.float()
            if tuple(delta.shape) != tuple(lin.weight.shape):
                raise ModelError(f"adapter factors of {name!r} give {tuple(delta.shape)}, the base weight is "
                                 f"{tuple(lin.weight.shape)}: the adapter belongs to another base")
            lin.weight.add_(delta.to(lin.weight.dtype), alpha=scaling)
        params = dict(model.named_parameters())
        for name in meta.get("full", []):  # whole tensors of a compressed full fine-tune
            p, t = params.get(name), tensors.get(name)
            if p is None or t is None or tuple(p.shape) != tuple(t.shape):
                raise ModelError(f"the adapter's whole tensor {name!r} is missing or does not fit the base model "
                                 f"({None if p is None else tuple(p.shape)}): the adapter belongs to another base")
            p.copy_(t.to(p.dtype))
        head = getattr(model, HEAD)
        head.weight.copy_(tensors[f"{HEAD}.weight"].float())
        head.bias.copy_(tensors[f"{HEAD}.bias"].float())


def base_folder(meta: dict[str, Any]) -> str:
    """The folder of the adapter's base model (assembled from the installed parts for MPNet)."""
    from . import encoders

    name = meta.get("base", {}).get("name")
    if name == encoders.MPNET_NAME:
        return str(encoders.mpnet_path())
    if name in ("all-MiniLM-L6-v2", "minilm"):
        return str(encoders.minilm_path())
    folder = meta.get("base", {}).get("folder")
    if folder and Path(folder).is_dir():
        return folder
    raise ModelError(f"the adapter's base model {name!r} is not available here: install it or pass the reader "
                     f"as a full model folder")


def load_merged(folder: str | os.PathLike, *, base: str | os.PathLike | None = None):
    """(tokenizer, model) of the adapter in ``folder`` merged into its base: a plain
    AutoModelForQuestionAnswering in fp32, in eval mode."""
    import warnings

    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tensors, meta = read_adapter(folder)
    src = str(base) if base is not None else base_folder(meta)
    tok = AutoTokenizer.from_pretrained(src, use_fast=True)
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "qa_outputs newly initialized": the adapter brings it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AutoModelForQuestionAnswering.from_pretrained(src).float()
    finally:
        hf_logging.set_verbosity(level)
    merge_into(model, tensors, meta)
    return tok, model.eval()


def adapted_module_names(model) -> list[str]:
    """The names of the Linear layers ``TARGET_REGEX`` selects in ``model`` (for checks)."""
    import torch

    rx = re.compile(TARGET_REGEX)
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and rx.fullmatch(n)]
