"""Drift of the served traffic against the model's training-time baseline: population stability index (PSI).

Pure Python, because the Lambda has no numpy; bins follow the baseline's rule (`bisect_right`). PSI is biased up
on small samples, hence a minimum window below which no verdict is given (docs/drift.md).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

EPSILON = 1e-4
STABLE, WARN, ALARM, TOO_FEW = "stable", "warn", "alarm", "too_few_samples"
CATEGORICAL, NUMERIC = "categorical", "numeric"
UNSEEN = "(unseen)"  # window categories the baseline never produced: counted, so they show up as drift


class BaselineError(ValueError):
    """A drift baseline that cannot be used; the message says what is wrong with it."""


@dataclass(frozen=True)
class Histogram:
    """One feature's fixed bins and the baseline's counts in them."""

    kind: str
    counts: tuple[int, ...]
    edges: tuple[float, ...] = ()  # numeric: interior edges, len(counts) - 1 of them
    categories: tuple[str, ...] = ()  # categorical: one per count

    def bin_labels(self) -> list[str]:
        if self.kind == CATEGORICAL:
            return list(self.categories)
        bounds = ["-inf", *(f"{edge:g}" for edge in self.edges), "inf"]
        return [f"[{low}, {high})" for low, high in pairwise(bounds)]

    def count(self, values: Iterable[float | str]) -> list[int]:
        """The values counted into these bins (categorical: plus one last bin of unseen categories)."""
        if self.kind == CATEGORICAL:
            index = {name: i for i, name in enumerate(self.categories)}
            counts = [0] * (len(self.categories) + 1)
            for value in values:
                counts[index.get(str(value), len(self.categories))] += 1
            return counts
        counts = [0] * len(self.counts)
        for value in values:
            counts[bisect_right(self.edges, float(value))] += 1
        return counts


@dataclass(frozen=True)
class Baseline:
    """A model version's reference distributions, as stored in its artifact."""

    model_version: str
    samples: int
    features: dict[str, Histogram]
    low_confidence_threshold: float  # a prediction with top score below this is "low confidence"
    low_confidence_share: float  # the share of such predictions on the baseline split
    # The share of baseline top scores below k / (len - 1), k = 0, 1, ...: the baseline's low-confidence share at
    # any threshold, so the job can count at the stage's UNCERTAIN_BELOW. Empty in baselines made before it.
    share_below: tuple[float, ...] = ()

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Baseline:
        try:
            features = {name: _histogram(name, spec) for name, spec in payload["features"].items()}
            low = payload["low_confidence"]
            share_below = tuple(float(share) for share in low.get("share_below", ()))
            if share_below and (len(share_below) < 2 or any(a > b for a, b in pairwise(share_below))
                                or not 0 <= share_below[0] <= share_below[-1] <= 1):
                raise BaselineError("low_confidence.share_below must be at least 2 non-decreasing shares")
            return cls(str(payload["model_version"]), int(payload["samples"]), features,
                       float(low["threshold"]), float(low["share"]), share_below)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BaselineError(f"not a drift baseline: {type(exc).__name__}: {exc}") from exc

    def low_confidence_at(self, threshold: float | None) -> tuple[float, float]:
        """(threshold, the baseline's share below it): `threshold` where the baseline records its shares (linear
        between the recorded points), else the baseline's own threshold and share."""
        if threshold is None or not self.share_below:
            return self.low_confidence_threshold, self.low_confidence_share
        position = min(max(threshold, 0.0), 1.0) * (len(self.share_below) - 1)
        low = min(int(position), len(self.share_below) - 2)
        below, above = self.share_below[low], self.share_below[low + 1]
        return threshold, below + (position - low) * (above - below)


def _histogram(name: str, spec: Mapping[str, Any]) -> Histogram:
    histogram = Histogram(spec["kind"], tuple(int(c) for c in spec["counts"]),
                          tuple(float(e) for e in spec.get("edges", ())),
                          tuple(str(c) for c in spec.get("categories", ())))
    if histogram.kind == NUMERIC:
        edges = histogram.edges
        if len(histogram.counts) != len(edges) + 1 or any(a >= b for a, b in pairwise(edges)):
            raise BaselineError(f"feature {name!r}: needs increasing edges and one count more than edges")
    elif histogram.kind == CATEGORICAL:
        if len(histogram.counts) != len(histogram.categories):
            raise BaselineError(f"feature {name!r}: needs one count per category")
    else:
        raise BaselineError(f"feature {name!r}: unknown kind {histogram.kind!r}")
    if sum(histogram.counts) <= 0:
        raise BaselineError(f"feature {name!r}: empty histogram")
    return histogram


def shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


def proportions(counts: Sequence[int]) -> list[float]:
    """Bin shares floored at EPSILON: an empty bin must not make the PSI infinite."""
    return [max(share, EPSILON) for share in shares(counts)]


def psi(baseline_counts: Sequence[int], window_counts: Sequence[int]) -> float:
    """Population stability index of two histograms over the same bins."""
    if len(baseline_counts) != len(window_counts):
        raise ValueError(f"{len(baseline_counts)} baseline bins but {len(window_counts)} window bins")
    return sum((w - b) * math.log(w / b)
               for b, w in zip(proportions(baseline_counts), proportions(window_counts), strict=True))


@dataclass(frozen=True)
class DriftThresholds:
    """When drift is news: PSI levels, the smallest window that gets a verdict, and the low-confidence line."""

    warn: float = 0.1
    alarm: float = 0.25
    min_samples: int = 300
    low_confidence_below: float | None = None  # the stage's UNCERTAIN_BELOW; None: the baseline's own threshold

    def status(self, value: float) -> str:
        return ALARM if value >= self.alarm else WARN if value >= self.warn else STABLE


@dataclass(frozen=True)
class Observation:
    """What the transaction log holds about one classified headline."""

    headline: str
    label: str
    top_score: float


def title_chars(title: str) -> int:
    """Characters after collapsing whitespace, as training measures them."""
    return len(" ".join(title.split()))


def title_words(title: str) -> int:
    return len(title.split())


Extractor = Callable[[Observation], float | str]
# What the Lambda can measure from a transaction; token length needs the tokenizer (see chalice_app/reports/drift.py).
RUNTIME_FEATURES: dict[str, Extractor] = {
    "label": lambda o: o.label,
    "top_score": lambda o: o.top_score,
    "title_chars": lambda o: title_chars(o.headline),
    "title_words": lambda o: title_words(o.headline),
}


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    status: str
    bins: list[str]
    baseline: list[float]  # shares per bin
    window: list[float]


@dataclass(frozen=True)
class DriftReport:
    """The drift of one model version's window of traffic against its baseline."""

    model_version: str
    samples: int
    status: str
    low_confidence_share: float
    baseline_low_confidence_share: float
    low_confidence_threshold: float
    features: list[FeatureDrift] = field(default_factory=list)
    not_measured: list[str] = field(default_factory=list)  # baseline features this computation cannot see

    @property
    def psi_max(self) -> float | None:
        return max((f.psi for f in self.features), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "samples": self.samples, "status": self.status,
                "psi_max": None if self.psi_max is None else round(self.psi_max, 4),
                "psi": {f.feature: round(f.psi, 4) for f in self.features},
                "feature_status": {f.feature: f.status for f in self.features},
                "low_confidence": {"threshold": self.low_confidence_threshold,
                                   "share": round(self.low_confidence_share, 4),
                                   "baseline_share": round(self.baseline_low_confidence_share, 4)},
                "not_measured": self.not_measured,
                "bins": {f.feature: {"bins": f.bins, "baseline": [round(s, 4) for s in f.baseline],
                                     "window": [round(s, 4) for s in f.window]} for f in self.features}}


def compare(baseline: Baseline, observations: Sequence[Observation], thresholds: DriftThresholds,
            extractors: Mapping[str, Extractor] = RUNTIME_FEATURES) -> DriftReport:
    """PSI of every baseline feature an extractor can measure, and the share of low-confidence predictions."""
    threshold, baseline_share = baseline.low_confidence_at(thresholds.low_confidence_below)
    low = sum(o.top_score < threshold for o in observations)
    share = low / len(observations) if observations else 0.0
    measured = [name for name in baseline.features if name in extractors]
    report = DriftReport(baseline.model_version, len(observations), TOO_FEW, share, baseline_share, threshold,
                         not_measured=[name for name in baseline.features if name not in extractors])
    if len(observations) < thresholds.min_samples:
        return report
    features = [_feature_drift(name, baseline.features[name], [extractors[name](o) for o in observations],
                               thresholds) for name in measured]
    worst = max((f.psi for f in features), default=0.0)
    return replace(report, features=features, status=thresholds.status(worst))


def _feature_drift(name: str, histogram: Histogram, values: list[float | str],
                   thresholds: DriftThresholds) -> FeatureDrift:
    window = histogram.count(values)
    expected = list(histogram.counts)
    bins = histogram.bin_labels()
    if len(window) > len(expected):  # categorical: the unseen bin
        if window[-1] == 0:
            window = window[:-1]
        else:
            expected, bins = [*expected, 0], [*bins, UNSEEN]
    value = psi(expected, window)
    return FeatureDrift(name, value, thresholds.status(value), bins, shares(expected), shares(window))
