"""The tuned settings shipped for each reader: ``rag/models/<name>_settings.json``.

One JSON object per reader name (see ``rag.readers.registry``): ``calibration`` (Platt ``a``,
``b``), ``threshold`` (the abstention threshold, chosen on the gold dev split), and for the
fitted readers their ``weights``, with the command, date and data that produced them.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any


def settings_file_name(name: str) -> str:
    return f"{name}_settings.json"


def load_reader_settings(name: str) -> dict[str, Any]:
    """Tuned settings shipped with the package for reader ``name`` ({} when none)."""
    try:
        text = resources.files("rag").joinpath("models", settings_file_name(name)).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return {}
    return json.loads(text)
