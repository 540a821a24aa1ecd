"""Which readers exist, what their names mean, and how one is built: the one owner of reader names.

    name       what it is                                                        model it needs
    features   rules over sentence, type and overlap signals (no neural model)   -
    mpnet      MPNet-base (110M) + the shipped LoRA adapter, merged at load      rag/models/reader_mpnet
    minilm     MiniLM-L6 (22M), fine-tuned in full                               rag/models/reader
    fused      mpnet's spans re-scored with the feature reader's signals         both of mpnet's
    fast       minilm's spans re-scored the same way (the MiniLM-era default)    rag/models/reader

``neural`` is an alias of ``mpnet`` (the strongest neural reader), ``fused-minilm`` of ``fast``.
Each reader's tuned calibration and threshold live in ``rag/models/<name>_settings.json``
(fused and fast also hold their logistic weights there).

The default is chosen on the gold dev split (see ``DEFAULT_READER``): ``mpnet`` where MPNet
answers within the latency target (a GPU, or a CPU that computes bf16 natively: AVX512-BF16 or
AMX), ``fast`` (MiniLM) on other CPUs, where one MPNet forward over five passages takes seconds
(measured in evals/README.md). When the default's model cannot be loaded here (the MPNet base is
assembled from pip packages that a minimal install may lack), ``rag.load`` falls back along
``FALLBACK`` and says so on stderr. Naming a reader always gets exactly that reader.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import Reader


@dataclass(frozen=True)
class ReaderSpec:
    """A reader by name: how to build it over an index, and the shipped neural model it needs.

    ``build(index, embedder)`` returns the ``Reader``. ``model`` ("mpnet", "minilm" or None) is
    checked by ``missing_reason`` before anything is built, so a missing model is a clear error.
    """

    name: str
    build: Callable[[Any, Any], Reader]
    summary: str
    model: str | None = None


READERS: dict[str, ReaderSpec] = {}


def register(name: str, build: Callable[[Any, Any], Reader], summary: str = "", *, model: str | None = None,
             replace: bool = False) -> ReaderSpec:
    """Make ``name`` a reader name for ``rag.load(..., reader=name)``, ``--reader name`` and the page.

    ``build(index, embedder)`` is called once per loaded index (``index``: the open index, with its
    chunks and documents; ``embedder``: the question encoder) and returns a ``Reader``. The
    built-in readers come in through this same call. A name taken already is refused unless
    ``replace=True``; a name with a "/" is refused (it would read as a Hugging Face id).
    """
    from ..errors import InputError

    if not isinstance(name, str) or not name or "/" in name or name != name.strip():
        raise InputError(f"reader name {name!r} is not usable: give a non-empty name without '/' or spaces around it")
    if not callable(build):
        raise InputError(f"reader {name!r}: build must be a function (index, embedder) -> Reader, got {build!r}")
    if model not in (None, "mpnet", "minilm"):
        raise InputError(f"reader {name!r}: model must be None, 'mpnet' or 'minilm', got {model!r}")
    if not replace and (name in READERS or name in ALIASES):
        raise InputError(f"reader name {name!r} is taken: pick another name, or pass replace=True")
    READERS[name] = spec = ReaderSpec(name, build, summary, model)
    return spec


def unregister(name: str) -> None:
    """Forget a registered reader name (built-ins included: they are ordinary entries)."""
    READERS.pop(name, None)


ALIASES = {"neural": "mpnet", "fused-minilm": "fast"}

#: The reader ``rag.load`` uses when none is named, chosen on the gold dev split by ``dev_choice``:
#: the best dev overall F1 among the readers whose dev NoAns accuracy meets the abstention target
#: (0.85, issue 16), since an honest "not in these articles" is half of what the tool promises; a
#: challenger replaces the incumbent only when it wins by more than one dev question's worth of F1
#: (1/76), the developers' rule that a reader change is kept only when dev says so. 2026-12-06,
#: the 1,746-step adapter, thresholds chosen under that floor: mpnet 0.650, fused (refit on its
#: spans) 0.620, NoAns 0.895 each: mpnet leads by 0.030 > 1/76, so ``mpnet`` replaces ``fused``
#: (which had held on 2026-12-04 with 0.646 against mpnet's 0.654, a tie). With the 1,846-step
#: adapter (later that day): mpnet 0.660, fused 0.620, NoAns 0.895 each: ``mpnet`` stays. With the
#: near-miss adapter (2,346 steps, the fourth session): mpnet 0.677 (NoAns 0.947), fused 0.669
#: (NoAns 0.895), a tie by that rule: ``mpnet`` stays. Fifth session (the same adapter read with AMX
#: bf16 kernels, the distilled MiniLM): mpnet 0.670 (NoAns 0.947), fused 0.656: ``mpnet`` stays; on
#: slow hardware ``fast`` 0.584 still leads ``minilm`` 0.554. Sixth session (stage 8, 3,246 steps):
#: mpnet 0.703, fused 0.662, NoAns 0.895 each: ``mpnet`` stays. evals/README.md.
DEFAULT_READER = "mpnet"
#: The dev abstention target a reader must meet to be the default (see ``DEFAULT_READER``).
DEFAULT_MIN_DEV_NOANS = 0.85
#: The default on hardware where MPNet is too slow to answer interactively.
DEFAULT_READER_SLOW_HARDWARE = "fast"
#: Where the default falls back when its model is not available here, in order.
FALLBACK = ("fast", "features")


def dev_choice(rows: list[dict[str, Any]], incumbent: str, min_noans: float = DEFAULT_MIN_DEV_NOANS) -> str:
    """The default the gold dev split picks from reader-table rows (``rag.eval.reader_table``'s
    ``"gold"`` list: ``reader``, ``split``, ``questions``, ``f1``, ``noans_acc``): among dev rows with
    ``noans_acc >= min_noans`` the best ``f1``, unless ``incumbent`` is eligible and trails it by at
    most one question's worth of F1 (``1 / questions``): then ``incumbent``."""
    eligible = [r for r in rows if r["split"] == "dev" and r["noans_acc"] >= min_noans]
    if not eligible:
        raise ValueError(f"no reader meets the dev NoAns target {min_noans}: lower the target or improve a reader")
    best = max(eligible, key=lambda r: r["f1"])
    held = [r for r in eligible if r["reader"] == incumbent]
    if held and best["f1"] - held[0]["f1"] <= 1.0 / max(int(held[0]["questions"]), 1):
        return incumbent
    return best["reader"]


def names() -> list[str]:
    """Every accepted reader name, canonical names first."""
    return [*READERS, *ALIASES]


def canonical(name: str) -> str:
    """The canonical name for ``name`` (an alias resolved); InputError for an unknown name."""
    from ..errors import InputError

    n = ALIASES.get(name, name)
    if n not in READERS:
        raise InputError(f"unknown reader {name!r}: use one of {', '.join(names())}, or a folder holding a "
                         "transformers question-answering model (or a rag LoRA adapter)")
    return n


def model_folder(model: str) -> Path:
    """The shipped folder of neural model ``model`` ("mpnet" or "minilm")."""
    from .neural import default_model_path  # rag/models/reader: the package's models folder is its parent

    return default_model_path().parent / {"mpnet": "reader_mpnet", "minilm": "reader"}[model]


def missing_reason(name: str) -> str | None:
    """Why reader ``name`` cannot be built here (None when it can). Cheap: loads no weights."""
    spec = READERS[canonical(name)]
    if spec.model is None:
        return None
    folder = model_folder(spec.model)
    if spec.model == "minilm":
        return None if (folder / "config.json").is_file() else f"the shipped MiniLM reader is missing from {folder}"
    if not (folder / "adapter.json").is_file():
        return f"the shipped MPNet adapter is missing from {folder}"
    from .. import encoders
    from ..errors import ModelError

    if encoders.verified(encoders.cache_dir() / encoders.MPNET_NAME, encoders.MPNET_SHA256):
        return None
    try:
        encoders.installed_mpnet_parts()
    except ModelError as e:
        return str(e)
    return None


def mpnet_is_interactive_here() -> bool:
    """True on a GPU or a CPU with native bf16, where an MPNet forward over five passages takes a
    few hundred milliseconds; False elsewhere (seconds: see ``DEFAULT_READER_SLOW_HARDWARE``)."""
    from .neural import cpu_has_native_bf16

    if cpu_has_native_bf16():
        return True
    import torch

    return bool(torch.cuda.is_available())


def default_name() -> str:
    """The reader used when none is named: ``DEFAULT_READER`` where it is fast enough here, else
    ``DEFAULT_READER_SLOW_HARDWARE``; the first of ``FALLBACK`` that can be built when that one's
    model is missing."""
    first = DEFAULT_READER
    if READERS[first].model == "mpnet" and not mpnet_is_interactive_here():
        first = DEFAULT_READER_SLOW_HARDWARE
    for n in (first, *FALLBACK):
        if missing_reason(n) is None:
            if n != first:
                print(f"rag: the default reader {first!r} is not available ({missing_reason(first)}); using {n!r}",
                      file=sys.stderr)
            return n
    return "features"


def neural_reader(model: str, name: str | None = None, **kwargs):
    """The shipped neural reader for ``model`` ("mpnet" or "minilm")."""
    from .neural import NeuralReader

    return NeuralReader(model_folder(model), name=name or model, **kwargs)


def _features(index, embedder) -> Reader:
    from .features import FeatureReader

    return FeatureReader(index, embedder)


def _neural(model: str, name: str) -> Callable[[Any, Any], Reader]:
    return lambda index, embedder: neural_reader(model, name)


def _fused(model: str, name: str) -> Callable[[Any, Any], Reader]:
    def build(index, embedder) -> Reader:
        from .fusion import FusedReader

        return FusedReader(index, embedder, neural=neural_reader(model), name=name)
    return build


register("features", _features, "rules over sentence/type signals, no neural model")
register("mpnet", _neural("mpnet", "mpnet"), "MPNet-base + shipped LoRA adapter", model="mpnet")
register("minilm", _neural("minilm", "minilm"), "MiniLM-L6, fine-tuned", model="minilm")
register("fused", _fused("mpnet", "fused"), "MPNet spans re-scored with feature signals", model="mpnet")
register("fast", _fused("minilm", "fast"), "MiniLM spans re-scored with feature signals", model="minilm")


def make_reader(spec: object, index: Any = None, embedder: Any = None) -> Reader:
    """A reader from a registered name (see ``READERS``), a model or adapter folder, a Hugging Face
    id, or a ``Reader`` (returned as it is), built over ``index`` with ``embedder``.

    ``None`` gives the default. Bad names and missing models raise InputError naming the fix.
    """
    from ..errors import InputError

    if spec is not None and not isinstance(spec, (str, os.PathLike)):
        if isinstance(spec, Reader):
            return spec
        raise InputError(f"reader must be a name ({', '.join(names())}), a model folder or a Reader (a name, "
                         f"uses_vectors and read(question, passages, qvec=None)), got {spec!r}")
    if spec is None:
        spec = default_name()
    if isinstance(spec, str) and (spec in READERS or spec in ALIASES):
        rs = READERS[canonical(spec)]
        why = missing_reason(rs.name)
        if why:
            raise InputError(f"reader {spec!r} cannot be loaded: {why}. Reinstall with bash scripts/setup.sh, "
                             "or pick another reader (reader='features' needs no model)")
        reader = rs.build(index, embedder)
        if not isinstance(reader, Reader):
            raise InputError(f"reader {spec!r}: its build function returned {reader!r}, not a Reader "
                             "(a name, uses_vectors and read(question, passages, qvec=None))")
        return reader
    from .. import hub

    if hub.is_hub_id(spec):  # e.g. deepset/roberta-base-squad2: fetched because the user named it
        path = hub.fetch(str(spec), "reader", option="--reader")
    else:
        path = Path(spec)
    if not path.is_dir():
        raise InputError(f"reader {str(spec)!r} is neither a reader name ({', '.join(names())}), a model "
                         "folder on disk nor a Hugging Face id (owner/name): pass a folder holding a "
                         "transformers question-answering model, or its hub id")
    from .neural import NeuralReader

    return NeuralReader(path)
