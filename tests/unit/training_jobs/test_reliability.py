"""The calibration and selective-prediction metrics match their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from training_jobs.reliability import (
    accuracy_at_coverage,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
    selective,
)


def test_the_metrics_match_their_definitions_on_a_worked_example() -> None:
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    labels = np.array([0, 1, 1, 1])  # right, wrong, right, right
    # bins of width 1/15: 0.9 -> bin 13, 0.6 -> bin 9, 0.7 -> bin 10, 0.8 -> bin 12: one headline each
    assert expected_calibration_error(probabilities, labels) == pytest.approx(
        (abs(1 - 0.9) + abs(0 - 0.6) + abs(1 - 0.7) + abs(1 - 0.8)) / 4)
    assert brier_score(probabilities, labels) == pytest.approx((0.02 + 0.72 + 0.18 + 0.08) / 4)
    assert negative_log_likelihood(probabilities, labels) == pytest.approx(
        -np.mean(np.log([0.9, 0.4, 0.7, 0.8])))
    assert sum(row["count"] for row in reliability_bins(probabilities, labels)) == 4
    assert selective(probabilities, labels, 0.65) == {"threshold": 0.65, "coverage": 0.75, "accuracy": 1.0,
                                                      "flagged_accuracy": 0.0}
    assert accuracy_at_coverage(probabilities, labels, (1.0, 0.5)) == {"1": 0.75, "0.5": 1.0}
