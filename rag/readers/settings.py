"""The tuned settings shipped for each reader: ``rag/models/<name>_settings.json``.

One JSON object per reader name (see ``rag.readers.registry``): ``calibration`` (Platt ``a``,
``b``), ``threshold`` (the abstention threshold, chosen on the gold dev split), and for the
fitted readers their ``weights``, with the command, date and data that produced them. A reader
tuned over several reading settings (``rag.train.tuning``: passages read ``k``, ``context``,
``windows``) keeps the chosen one's at the top and the sweep in ``k_sweep``, each row with its own
calibration and threshold (``Tuning``), so a caller who reads differently gets that setting's.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
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


#: A reading setting: (passages read, characters of context, window layout). The layout only
#: matters with a context, so without one it is always "merged".
SettingKey = tuple[int, int, str]


def setting_key(k: int, context: int, windows: str) -> SettingKey:
    """The key a reading setting is tuned under (``windows`` counts only with a ``context``)."""
    return int(k), int(context), windows if context else "merged"


def describe_setting(key: SettingKey) -> str:
    """``k 5, context 300, merged windows``: a setting as messages name it."""
    k, context, windows = key
    return f"k {k}, context {context}" + (f", {windows} windows" if context else "")


@dataclass(frozen=True)
class Tuning:
    """The calibration and abstention threshold that answering at one reading setting uses.

    ``source``: "chosen" (the setting the reader was tuned for, its settings file's top level),
    "sweep" (another setting calibrated on the gold dev split in the same sweep, a ``k_sweep`` row)
    or "untuned" (a setting with no dev calibration: the chosen setting's is used).
    """

    calibrator: Calibrator
    threshold: float
    source: str = "chosen"


def sweep_tunings(settings: dict[str, Any]) -> dict[SettingKey, Tuning]:
    """The ``k_sweep`` rows of a settings file that carry their own calibration, by setting (rows
    written before sweeps recorded calibrations carry none, and are left out)."""
    out: dict[SettingKey, Tuning] = {}
    for row in settings.get("k_sweep", ()):
        cal = row.get("calibration")
        if not cal or "threshold" not in row:
            continue
        key = setting_key(row["k"], row.get("context", 0), row.get("windows", "merged"))
        out[key] = Tuning(Calibrator(cal["a"], cal["b"], cal.get("identity", False)), float(row["threshold"]), "sweep")
    return out
