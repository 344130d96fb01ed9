"""The promotion gate: a retrained candidate replaces the current model only if it is not worse.

Both models are scored on the same held-out examples. The candidate passes when, for each gated metric,
`candidate >= current - margin`. A margin is best read in headlines: one moves accuracy by 1/n (n: the evaluation
report's `n`), so a margin m forgives m·n of them. The defaults (`Margins`) forgive the few that retraining alone
moves and refuse a real regression. Feedback corrections may trade a little held-out score for the traffic the
model actually sees; the margin is how much, and `--max-accuracy-drop` / `--max-macro-f1-drop` change it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GATED_METRICS = ("macro_f1", "accuracy")
_NAMES = {"macro_f1": "macro-F1", "accuracy": "accuracy"}


@dataclass(frozen=True)
class Margins:
    """How far below the current model each metric of the candidate may fall."""

    macro_f1: float = 0.005
    accuracy: float = 0.005

    def __post_init__(self) -> None:
        for metric in GATED_METRICS:
            value = getattr(self, metric)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"the {_NAMES[metric]} margin must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class Check:
    metric: str
    candidate: float
    current: float
    margin: float

    @property
    def delta(self) -> float:
        return self.candidate - self.current

    @property
    def passed(self) -> bool:
        floor = self.current - self.margin
        return self.candidate >= floor or math.isclose(self.candidate, floor, abs_tol=1e-12)

    def describe(self) -> str:
        return (f"{_NAMES[self.metric]} {self.candidate:.4f} vs {self.current:.4f} ({self.delta:+.4f}, "
                f"allowed -{self.margin:.4f}): {'ok' if self.passed else 'worse'}")


@dataclass(frozen=True)
class Decision:
    promote: bool
    checks: tuple[Check, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "verdict": "promote" if self.promote else "reject",
                "checks": [{"metric": c.metric, "candidate": c.candidate, "current": c.current, "delta": c.delta,
                            "margin": c.margin, "passed": c.passed, "summary": c.describe()} for c in self.checks]}


def decide(candidate: Mapping[str, Any], current: Mapping[str, Any], margins: Margins) -> Decision:
    """Compare two evaluation reports (training_jobs.evaluate) of the same examples."""
    if candidate["n"] != current["n"]:
        raise ValueError(f"the models were scored on different data: {candidate['n']} vs {current['n']} examples")
    checks = tuple(Check(metric, float(candidate[metric]), float(current[metric]), getattr(margins, metric))
                   for metric in GATED_METRICS)
    return Decision(all(check.passed for check in checks), checks)
