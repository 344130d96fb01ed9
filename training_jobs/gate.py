"""The promotion gate: a retrained candidate replaces the current model only when the rows show it is not worse.

One retrain of the same recipe moves NLP-100 test accuracy by about a point (docs/benchmarks.md), so comparing one
number of each model with a half-point margin rejects about every other harmless retrain and lets through losses
that happen to score well. The gate therefore looks at the rows, not at two numbers:

- Both models answer the same rows, the current model re-scored now (never its stored number): NLP-100 test and,
  when both models were trained without it, the story-disjoint judge (training_jobs.holdout). Only the rows where
  the two disagree move the difference; the report counts them (`candidate_only`, `current_only`).
- A paired bootstrap resamples those rows (the same resample for both models) to get the distribution of the gain,
  candidate minus current, in accuracy and in macro-F1.
- The rule is non-inferiority: promote when, for each metric, the one-sided `confidence` lower bound of the gain is
  above `-tolerance`. Noise cannot fake a pass: a candidate truly worse by the tolerance or more passes at most
  1 - `confidence` of the time. Nor can noise fake a loss as easily as before: a retrain that is as good as the
  current model scores a gain near 0, and its lower bound stays above -tolerance unless the rows are few.

Defaults (`Margins`): 95% confidence; the bound of the accuracy gain may reach -1.5 points, of macro-F1 -2.5. Three
seeds of one recipe spread by up to 0.8 point in accuracy and 1.5 in macro-F1 (sd, docs/benchmarks.md), so two
retrains differ by about 1.1 and 2 points: a tighter tolerance would reject sound retrains again. On NLP-100 test
plus the judge (4,126 rows) the bound sits about 0.75 point below the gain, so a candidate that is as good passes,
and one that loses 1.5 points or more is stopped at least 95% of the time. McNemar's exact p-value of the
disagreements is reported beside the bounds, as a second reading of the same evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest

GATED_METRICS = ("macro_f1", "accuracy")
_NAMES = {"macro_f1": "macro-F1", "accuracy": "accuracy"}


@dataclass(frozen=True)
class Margins:
    """How much worse than the current model each metric of the candidate may be, at what confidence."""

    macro_f1: float = 0.025
    accuracy: float = 0.015
    confidence: float = 0.95
    resamples: int = 4000
    seed: int = 0  # the bootstrap's: the same rows give the same verdict

    def __post_init__(self) -> None:
        for metric in GATED_METRICS:
            value = getattr(self, metric)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"the {_NAMES[metric]} margin must be a number >= 0, got {value!r}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"the confidence must be in [0.5, 1), got {self.confidence!r}")
        if self.resamples < 100:
            raise ValueError(f"at least 100 bootstrap resamples are needed, got {self.resamples!r}")


@dataclass(frozen=True)
class PairedRows:
    """The true label and both models' answers on the same rows, with the set each row comes from."""

    truth: np.ndarray
    candidate: np.ndarray
    current: np.ndarray
    sets: tuple[str, ...]  # one name per row: "test", "story_disjoint"

    @classmethod
    def of(cls, truth: Sequence[int], candidate: Sequence[int], current: Sequence[int],
           sets: Sequence[str]) -> PairedRows:
        if not len(truth) == len(candidate) == len(current) == len(sets):
            raise ValueError(f"the models were scored on different rows: {len(truth)} labels, {len(candidate)} "
                             f"candidate and {len(current)} current answers, {len(sets)} set names")
        if not len(truth):
            raise ValueError("no rows to compare the models on")
        return cls(np.asarray(truth), np.asarray(candidate), np.asarray(current), tuple(sets))

    def subset(self, name: str) -> PairedRows:
        keep = np.array([s == name for s in self.sets])
        return PairedRows(self.truth[keep], self.candidate[keep], self.current[keep], (name,) * int(keep.sum()))

    @property
    def set_names(self) -> list[str]:
        return list(dict.fromkeys(self.sets))

    def disagreements(self) -> tuple[int, int]:
        """(rows only the candidate answers right, rows only the current model answers right)."""
        right_candidate, right_current = self.candidate == self.truth, self.current == self.truth
        return int((right_candidate & ~right_current).sum()), int((right_current & ~right_candidate).sum())


def _metrics(weights: np.ndarray, truth: np.ndarray, answers: np.ndarray, classes: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy and macro-F1 of `answers` under each row of `weights` (how often each row was drawn)."""
    total = weights.sum(axis=1)
    accuracy = weights @ (answers == truth) / total
    f1 = []
    for label in classes:
        hits = weights @ ((answers == label) & (truth == label))
        either = weights @ (answers == label) + weights @ (truth == label)
        f1.append(np.divide(2 * hits, either, out=np.zeros_like(hits, dtype=float), where=either > 0))
    return {"accuracy": accuracy, "macro_f1": np.mean(f1, axis=0)}


def observed(rows: PairedRows) -> dict[str, dict[str, float]]:
    """Each model's accuracy and macro-F1 on all the rows."""
    ones, classes = np.ones((1, len(rows.truth))), np.unique(rows.truth)
    return {side: {metric: float(value[0]) for metric, value in _metrics(ones, rows.truth, answers, classes).items()}
            for side, answers in (("candidate", rows.candidate), ("current", rows.current))}


def bootstrap_gains(rows: PairedRows, resamples: int, seed: int) -> dict[str, np.ndarray]:
    """The gain (candidate minus current) of each metric in `resamples` paired bootstrap resamples of the rows.

    Both metrics depend only on how many rows share each (truth, candidate, current) triple, so drawing the rows
    with replacement is drawing those counts from a multinomial: the same distribution, at a few dozen cells a draw.
    """
    rng = np.random.default_rng(seed)
    cells, counts = np.unique(np.stack([rows.truth, rows.candidate, rows.current]), axis=1, return_counts=True)
    classes = np.unique(rows.truth)
    weights = rng.multinomial(len(rows.truth), counts / counts.sum(), size=resamples).astype(float)
    candidate = _metrics(weights, cells[0], cells[1], classes)
    current = _metrics(weights, cells[0], cells[2], classes)
    return {metric: candidate[metric] - current[metric] for metric in GATED_METRICS}


@dataclass(frozen=True)
class Check:
    metric: str
    candidate: float
    current: float
    lower: float  # the one-sided lower confidence bound of the gain
    upper: float  # and the upper one, at the same confidence
    margin: float

    @property
    def gain(self) -> float:
        return self.candidate - self.current

    @property
    def passed(self) -> bool:
        return self.lower >= -self.margin or math.isclose(self.lower, -self.margin, abs_tol=1e-12)

    @property
    def reading(self) -> str:
        """better (the gain's lower bound is above 0), worse (rejected), or the same within the margin."""
        if not self.passed:
            return "worse"
        return "better" if self.lower > 0 else "not worse"

    def describe(self) -> str:
        return (f"{_NAMES[self.metric]} {self.candidate:.4f} vs {self.current:.4f}: gain {self.gain:+.4f}, "
                f"bounds [{self.lower:+.4f}, {self.upper:+.4f}], allowed -{self.margin:.4f}: {self.reading}")


@dataclass(frozen=True)
class Decision:
    promote: bool
    checks: tuple[Check, ...]
    rows: dict[str, int]  # rows per set, and "all"
    candidate_only: int
    current_only: int
    mcnemar_p: float
    margins: Margins
    per_set: dict[str, dict[str, Any]]

    def rule(self) -> str:
        m = self.margins
        return (f"promote when the {m.confidence:.0%} lower bound of the paired gain (candidate minus current, "
                f"{m.resamples} bootstrap resamples of the same rows) is above -{m.accuracy:g} in accuracy and "
                f"-{m.macro_f1:g} in macro-F1")

    def as_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "verdict": "promote" if self.promote else "reject", "rule": self.rule(),
                "rows": self.rows, "disagreements": {"candidate_only": self.candidate_only,
                                                     "current_only": self.current_only,
                                                     "mcnemar_exact_p": self.mcnemar_p},
                "checks": [{"metric": c.metric, "candidate": c.candidate, "current": c.current, "gain": c.gain,
                            "lower": c.lower, "upper": c.upper, "margin": c.margin, "passed": c.passed,
                            "reading": c.reading, "summary": c.describe()} for c in self.checks],
                "per_set": self.per_set}

    def summary(self) -> dict[str, Any]:
        """What the registry keeps of the gate: the gains, their lower bounds, the rows."""
        return {"rows": self.rows, **{f"{c.metric}_gain": round(c.gain, 4) for c in self.checks},
                **{f"{c.metric}_lower": round(c.lower, 4) for c in self.checks}}


def _per_set(rows: PairedRows) -> dict[str, dict[str, Any]]:
    """Each set's own scores and disagreements: read them, the verdict is on all rows together."""
    report = {}
    for name in rows.set_names:
        part = rows.subset(name)
        scores = observed(part)
        candidate_only, current_only = part.disagreements()
        report[name] = {"n": len(part.truth), "candidate": scores["candidate"], "current": scores["current"],
                        "candidate_only": candidate_only, "current_only": current_only}
    return report


def decide(rows: PairedRows, margins: Margins) -> Decision:
    """The verdict on paired answers of the candidate and the current model."""
    scores = observed(rows)
    gains = bootstrap_gains(rows, margins.resamples, margins.seed)
    tail = 100 * (1 - margins.confidence)
    checks = tuple(Check(metric, scores["candidate"][metric], scores["current"][metric],
                         float(np.percentile(gains[metric], tail)), float(np.percentile(gains[metric], 100 - tail)),
                         getattr(margins, metric)) for metric in GATED_METRICS)
    candidate_only, current_only = rows.disagreements()
    p_value = binomtest(candidate_only, candidate_only + current_only).pvalue if candidate_only + current_only else 1.0
    counts = {name: sum(s == name for s in rows.sets) for name in rows.set_names}
    return Decision(all(check.passed for check in checks), checks, {**counts, "all": len(rows.truth)},
                    candidate_only, current_only, float(p_value), margins, _per_set(rows))


def paired_rows(truth: Mapping[str, Sequence[int]], candidate: Mapping[str, Sequence[int]],
                current: Mapping[str, Sequence[int]]) -> PairedRows:
    """One PairedRows from per-set labels and answers (the sets in `truth`'s order)."""
    return PairedRows.of([y for name in truth for y in truth[name]], [y for name in truth for y in candidate[name]],
                         [y for name in truth for y in current[name]],
                         [name for name in truth for _ in truth[name]])
