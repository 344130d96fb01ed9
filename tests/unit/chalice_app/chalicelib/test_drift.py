"""Drift arithmetic (chalicelib/drift.py): PSI, the baseline's bins, the verdicts, and real headline streams that
must or must not trip the alarm."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chalicelib.drift import (
    ALARM,
    EPSILON,
    STABLE,
    TOO_FEW,
    UNSEEN,
    WARN,
    Baseline,
    BaselineError,
    DriftThresholds,
    Histogram,
    Observation,
    compare,
    psi,
    title_chars,
    title_words,
)

from model.calibration import UNCERTAIN_BELOW
from tests.support.drift_streams import baseline, observations, streams
from training_jobs.drift_baseline import collapsed, numeric_histogram

STREAM_THRESHOLDS = DriftThresholds(min_samples=100)  # the test split has 105 Health headlines


def test_psi_of_identical_distributions_is_zero() -> None:
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-12)


def test_psi_matches_the_formula_and_is_symmetric() -> None:
    expected = (0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5)
    assert psi([50, 50], [90, 10]) == pytest.approx(expected)
    assert psi([90, 10], [50, 50]) == pytest.approx(expected)


def test_empty_bin_costs_a_finite_amount_through_epsilon() -> None:
    expected = (1 - 0.5) * math.log(1 / 0.5) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    assert psi([50, 50], [100, 0]) == pytest.approx(expected)


def test_psi_needs_the_same_bins() -> None:
    with pytest.raises(ValueError, match="3 baseline bins but 2 window bins"):
        psi([1, 2, 3], [1, 2])


def test_numeric_bins_put_an_edge_value_in_the_upper_bin() -> None:
    histogram = Histogram("numeric", (1, 1, 1), edges=(1.0, 2.0))
    assert histogram.count([0.5, 1.0, 1.5, 2.0, 3.0]) == [1, 2, 2]
    assert histogram.bin_labels() == ["[-inf, 1)", "[1, 2)", "[2, inf)"]


def test_lambda_binning_agrees_with_the_baseline_binning_of_training() -> None:
    """Training counts with numpy, the Lambda with bisect: the same values must land in the same bins."""
    rng = random.Random(3)
    values = [rng.choice([rng.randint(0, 30), rng.random()]) for _ in range(2000)]
    spec = numeric_histogram(values)
    histogram = Histogram("numeric", tuple(spec["counts"]), edges=tuple(spec["edges"]))
    assert histogram.count(values) == spec["counts"]
    assert 5 <= len(spec["edges"]) <= 9 and spec["edges"] == sorted(set(spec["edges"]))


def test_categories_the_baseline_never_saw_become_an_unseen_bin() -> None:
    base = Baseline("v1", 100, {"label": Histogram("categorical", (50, 50), categories=("A", "B"))}, 0.5, 0.0)
    window = [Observation("t", label, 0.9) for label in ["A"] * 40 + ["B"] * 40 + ["C"] * 20]
    (feature,) = compare(base, window, DriftThresholds(min_samples=1)).features
    assert feature.bins == ["A", "B", UNSEEN]
    assert feature.window == pytest.approx([0.4, 0.4, 0.2])
    assert feature.status == ALARM


@pytest.mark.parametrize(("value", "status"), [(0.0, STABLE), (0.0999, STABLE), (0.1, WARN), (0.2499, WARN),
                                               (0.25, ALARM), (3.0, ALARM)])
def test_status_levels(value: float, status: str) -> None:
    assert DriftThresholds().status(value) == status


@pytest.mark.parametrize(("change", "message"), [
    (lambda b: b.pop("features"), "KeyError"),
    (lambda b: b["features"]["title_chars"].update(edges=[5.0, 3.0, *b["features"]["title_chars"]["edges"][2:]]),
     "increasing edges"),
    (lambda b: b["features"]["title_words"].update(counts=[1, 2]), "one count more than edges"),
    (lambda b: b["features"]["label"].update(counts=[1]), "one count per category"),
    (lambda b: b["features"]["label"].update(kind="ordinal"), "unknown kind"),
    (lambda b: b["features"]["label"].update(counts=[0, 0, 0, 0]), "empty histogram"),
])
def test_broken_baselines_are_clear_errors(stream_baseline: dict[str, Any], change: Any, message: str) -> None:
    broken = {**stream_baseline, "features": {k: dict(v) for k, v in stream_baseline["features"].items()}}
    change(broken)
    with pytest.raises(BaselineError, match=message):
        Baseline.from_dict(broken)


def test_length_features_are_measured_as_training_measures_them() -> None:
    title = "  Ebola   outbreak\tspreads to  Lagos "
    assert title_chars(title) == len(collapsed(title)) == len("Ebola outbreak spreads to Lagos")
    assert title_words(title) == len(collapsed(title).split()) == 5


@pytest.fixture(scope="module")
def headline_streams(data_dir: Path) -> dict[str, list[Any]]:
    valid, normal, shifted = streams(data_dir)
    return {"valid": valid, "normal": normal, "shifted": shifted}


@pytest.fixture(scope="module")
def stream_baseline(headline_streams: dict[str, list[Any]]) -> dict[str, Any]:
    return baseline(headline_streams["valid"], "v-synthetic")


def test_the_baseline_split_itself_shows_no_drift(stream_baseline: dict[str, Any],
                                                   headline_streams: dict[str, list[Any]]) -> None:
    report = compare(Baseline.from_dict(stream_baseline), observations(headline_streams["valid"]), STREAM_THRESHOLDS)
    assert report.status == STABLE
    assert all(f.psi == pytest.approx(0.0, abs=1e-12) for f in report.features)
    assert report.low_confidence_share == pytest.approx(stream_baseline["low_confidence"]["share"])


def test_a_random_sample_of_the_test_split_does_not_trip(stream_baseline: dict[str, Any],
                                                         headline_streams: dict[str, list[Any]]) -> None:
    report = compare(Baseline.from_dict(stream_baseline), observations(headline_streams["normal"]), STREAM_THRESHOLDS)
    assert report.samples == 500
    assert report.status == STABLE, report.to_dict()["psi"]
    assert {f.feature for f in report.features} == {"label", "top_score", "title_chars", "title_words"}
    assert report.not_measured == ["token_length"]  # the Lambda has no tokenizer


def test_health_headlines_only_trip_the_alarm(stream_baseline: dict[str, Any],
                                              headline_streams: dict[str, list[Any]]) -> None:
    report = compare(Baseline.from_dict(stream_baseline), observations(headline_streams["shifted"]), STREAM_THRESHOLDS)
    psi_by_feature = {f.feature: f for f in report.features}
    assert report.status == ALARM
    assert psi_by_feature["label"].status == ALARM  # predictions pile up on Health
    health = psi_by_feature["label"].bins.index("Health")
    assert psi_by_feature["label"].window[health] > 0.8 > 0.2 > psi_by_feature["label"].baseline[health]


def test_small_windows_get_no_verdict(stream_baseline: dict[str, Any], headline_streams: dict[str, list[Any]]) -> None:
    shifted = observations(headline_streams["shifted"])
    assert len(shifted) < DriftThresholds().min_samples
    report = compare(Baseline.from_dict(stream_baseline), shifted, DriftThresholds())
    assert report.status == TOO_FEW and report.features == [] and report.psi_max is None


def test_low_confidence_share_counts_top_scores_below_the_baselines_threshold(
        stream_baseline: dict[str, Any]) -> None:
    base = Baseline.from_dict(stream_baseline)
    line = base.low_confidence_threshold
    window = [Observation("a headline", "Business", score) for score in (0.3, line - 0.01, line, 0.99)]
    assert line == UNCERTAIN_BELOW
    assert compare(base, window, DriftThresholds(min_samples=1)).low_confidence_share == 0.5
    assert np.isclose(base.low_confidence_share, stream_baseline["low_confidence"]["share"])


def test_low_confidence_is_counted_at_the_stages_threshold_on_both_sides(
        stream_baseline: dict[str, Any], headline_streams: dict[str, list[Any]]) -> None:
    """The drift job's line is the API's UNCERTAIN_BELOW: the window and the baseline are both counted there."""
    base = Baseline.from_dict(stream_baseline)
    valid_top = np.array([o.top_score for o in observations(headline_streams["valid"])])
    for threshold in (0.8, 0.83):
        window = [Observation("a headline", "Business", score) for score in (0.3, threshold - 0.01, threshold, 0.99)]
        report = compare(base, window, DriftThresholds(min_samples=1, low_confidence_below=threshold))
        assert report.low_confidence_threshold == threshold and report.low_confidence_share == 0.5
        assert report.baseline_low_confidence_share == pytest.approx(np.mean(valid_top < threshold), abs=0.005)
    at_point = compare(base, [], DriftThresholds(min_samples=1, low_confidence_below=0.8))
    assert at_point.baseline_low_confidence_share == pytest.approx(np.mean(valid_top < 0.8), abs=1e-6)  # recorded


def test_a_baseline_made_before_the_recorded_shares_keeps_its_own_threshold(stream_baseline: dict[str, Any]) -> None:
    old = {**stream_baseline, "low_confidence": {"threshold": 0.5, "share": 0.04}}
    report = compare(Baseline.from_dict(old), [Observation("h", "Business", 0.45)],
                     DriftThresholds(min_samples=1, low_confidence_below=0.8))
    assert (report.low_confidence_threshold, report.baseline_low_confidence_share) == (0.5, 0.04)


@pytest.mark.parametrize("share_below", [[0.5], [0.2, 0.1, 0.3], [0.0, 1.5]])
def test_broken_recorded_shares_are_clear_errors(stream_baseline: dict[str, Any], share_below: list[float]) -> None:
    broken = {**stream_baseline, "low_confidence": {**stream_baseline["low_confidence"], "share_below": share_below}}
    with pytest.raises(BaselineError, match="share_below"):
        Baseline.from_dict(broken)
