"""The tuned settings shipped for each reader: ``rag/models/<name>_settings.json``.

One JSON object per reader name (see ``rag.readers.registry``): ``calibration`` (Platt ``a``,
``b``), ``threshold`` (the abstention threshold, chosen on the gold dev split), and for the
fitted readers their ``weights``, with the command, date and data that produced them.
"""
from __future__ import annotations

import json
import math
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


class Calibrator:
    """Maps a reader's raw group score to a probability of being right (Platt scaling).

    Fitted on the gold dev split by ``rag.train.tuning.calibrate_on_dev``; ``a`` and ``b`` live
    in the reader's settings file (``calibration``), and a reader without one passes scores through.
    """

    def __init__(self, a: float = 1.0, b: float = 0.0, identity: bool = True) -> None:
        self.a, self.b, self.identity = a, b, identity

    def __call__(self, score: float) -> float:
        if self.identity:
            return min(1.0, max(0.0, score))
        z = self.a * _logit(score) + self.b
        return 1.0 / (1.0 + math.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "identity": self.identity}


def _logit(p: float) -> float:
    p = min(1 - 1e-6, max(1e-6, p))
    return math.log(p / (1 - p))
