"""Turning logits into probabilities that mean what they say: the model folder's temperature.

A fine-tuned classifier is over-confident: its mean top score is above its accuracy (docs/benchmarks.md,
"Calibration", measures both before and after). Training fits one temperature T on the validation split
(`training_jobs/calibrate.py`) and stores it in `calibration.json` beside the label map; every runtime turns its
logits into scores here, as softmax(logits / T). T > 0 divides all logits of a headline alike, so the winning label
never changes. A folder without the file (made before calibration existed) is served with T = 1, its scores as they
always were, and `describe()` says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION_FILE = "calibration.json"
TEMPERATURE = "temperature"
# The calibrated top score below which an answer is "uncertain": the API's default (chalicelib/config.py pins its
# copy), the drift job's low-confidence line, and the threshold evaluations report coverage at. Chosen on the
# validation split; the coverage and accuracy it gives are measured in docs/benchmarks.md ("Calibration").
UNCERTAIN_BELOW = 0.6


class CalibrationError(ValueError):
    """A `calibration.json` that cannot be used; the message names the file and the problem."""


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Calibration:
    """How a model folder's logits become its served probabilities."""

    temperature: float = 1.0
    fitted: bool = False  # False: no calibration.json, the raw softmax is served
    details: dict[str, Any] = field(default_factory=dict)  # what the fit recorded (split, size, NLL before/after)

    def __post_init__(self) -> None:
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, int | float) \
                or not math.isfinite(self.temperature) or self.temperature <= 0:
            raise CalibrationError(f"temperature must be a positive number, not {self.temperature!r}")

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities, float32, same shape and same argmax as `logits`."""
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """What the load log and the evaluation report say about the scores."""
        if not self.fitted:
            return {"method": "none", TEMPERATURE: 1.0,
                    "note": f"no {CALIBRATION_FILE} in the model folder: uncalibrated softmax scores"}
        return {"method": TEMPERATURE, TEMPERATURE: self.temperature}

    def save(self, model_dir: Path) -> Path:
        path = Path(model_dir) / CALIBRATION_FILE
        path.write_text(json.dumps({"method": TEMPERATURE, TEMPERATURE: self.temperature, **self.details},
                                   indent=2) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: Path) -> Calibration:
        path = Path(model_dir) / CALIBRATION_FILE
        if not path.is_file():
            return cls()
        try:
            payload = json.loads(path.read_text())
            if payload.get("method") != TEMPERATURE:
                raise CalibrationError(f"unknown method {payload.get('method')!r}; expected {TEMPERATURE!r}")
            details = {k: v for k, v in payload.items() if k not in ("method", TEMPERATURE)}
            return cls(payload[TEMPERATURE], fitted=True, details=details)
        except (json.JSONDecodeError, KeyError, AttributeError, CalibrationError) as exc:
            raise CalibrationError(f"{path}: not a usable calibration ({type(exc).__name__}: {exc})") from exc
