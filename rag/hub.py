"""Models named by a Hugging Face Hub id: fetched only because the user named one.

The package runs offline (``HF_HUB_OFFLINE=1`` is its default, and the shipped models need no
network). A ``model=`` / ``reader=`` that is not a local folder but looks like ``owner/name`` is a
hub id the user asked for: it is taken from the local Hugging Face cache when it is there, else
downloaded once (offline mode lifted for that one call). Without a network the user gets a
``ModelError`` saying the id could not be fetched and how to point at a local folder instead.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ModelError

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def is_hub_id(spec: str | os.PathLike) -> bool:
    """``owner/name`` that is not a folder on disk (``./x/y`` or ``~/x`` are paths, never ids)."""
    s = str(spec)
    return bool(_HUB_ID.match(s)) and not s.startswith(".") and not Path(s).expanduser().exists()


def fetch(repo_id: str, what: str, *, option: str) -> Path:
    """The local folder of hub model ``repo_id`` (cache first, else one download).

    ``what`` names the model's role in messages ("embedding model", "reader"); ``option`` is the
    CLI option that takes a folder instead (``--model``, ``--reader``).
    """
    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError:  # pragma: no cover - transformers depends on it
        raise ModelError(f"{what} {repo_id!r} looks like a Hugging Face id, but huggingface_hub is not "
                         "installed: pip install huggingface_hub, or pass a local folder") from None
    endpoint = os.environ.get("HF_ENDPOINT") or None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True, endpoint=endpoint))
    except Exception:  # noqa: BLE001 - not in the cache (or a partial copy): download it below
        pass
    was = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False  # the user named this model: this one fetch may use the network
    try:
        return Path(snapshot_download(repo_id, endpoint=endpoint, etag_timeout=10))
    except Exception as e:  # noqa: BLE001 - no network, unknown id, gated repo: the same advice
        raise ModelError(
            f"{what} {repo_id!r} could not be fetched from the Hugging Face Hub ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:120] if str(e) else 'no detail'}). Without a network, download it on a "
            f"machine that has one (huggingface-cli download {repo_id} --local-dir DIR), copy DIR here and "
            f"pass {option} DIR") from None
    finally:
        constants.HF_HUB_OFFLINE = was
