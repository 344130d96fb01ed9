"""The distillation teacher: its scores file, the folds that keep it out of fold, the loss that mixes it in, and
training's refusal to distil a teacher that may have seen the judge."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from model.labels import LabelMap
from training_jobs import teacher_scores
from training_jobs.data import DataError, Example, Splits
from training_jobs.fit import TargetLoss
from training_jobs.teacher import fold_of
from training_jobs.train import read_teacher

LABELS = LabelMap.default()
ROWS = [Example("Fed raises rates", "b", story="s1"), Example("New iPhone ships", "t", story="s2")]


def write_teacher(path: Path, judge_sha256: str | None, labels: list[str] | None = None) -> np.ndarray:
    """A teacher file for ROWS; its columns in `labels` order (default: the label map's)."""
    labels = labels or list(LABELS.categories)
    probabilities = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.6, 0.1]], dtype=np.float32)
    teacher_scores.save(path, [teacher_scores.title_key(ex.title) for ex in ROWS], probabilities,
                        {"labels": labels, "judge_sha256": judge_sha256})
    return probabilities


def splits(judge_sha256: str) -> Splits:
    return Splits(list(ROWS), [], [], "test", judge_stats={"sha256": judge_sha256})


def test_scores_are_found_by_normalised_title_in_label_map_order_and_missing_rows_are_nan(tmp_path: Path) -> None:
    stored = list(reversed(LABELS.categories))
    probabilities = write_teacher(tmp_path / "t.npz", "j", stored)
    asked = [Example('  FED raises  "rates"', "b"), Example("Never scored", "e"), ROWS[1]]
    scores, meta = teacher_scores.load(tmp_path / "t.npz", asked, LABELS)
    order = [stored.index(category) for category in LABELS.categories]
    np.testing.assert_array_equal(scores[0], probabilities[0][order])
    np.testing.assert_array_equal(scores[2], probabilities[1][order])
    assert np.isnan(scores[1]).all() and meta["format"] == teacher_scores.FORMAT
    assert b"iphone" not in (tmp_path / "t.npz").read_bytes().lower()  # keys are hashes, not headlines


def test_a_file_of_another_format_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "other.npz", keys=np.array(["a"]), probabilities=np.zeros((1, 4)), meta=np.array("{}"))
    with pytest.raises(ValueError, match="format"):
        teacher_scores.load(tmp_path / "other.npz", ROWS, LABELS)


def test_training_distils_a_teacher_built_around_its_own_judge(tmp_path: Path) -> None:
    write_teacher(tmp_path / "t.npz", "judge-a")
    scores, record = read_teacher(tmp_path / "t.npz", splits("judge-a"), LABELS)
    assert scores is not None and scores.shape == (2, 4)
    assert record["used"] is True and record["coverage"] == 1.0 and len(record["sha256"]) == 64


def test_a_teacher_built_around_another_judge_is_not_distilled(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """Its members may have trained on this run's judge rows: distilling them would leak the judge into training."""
    write_teacher(tmp_path / "t.npz", "judge-a")
    with caplog.at_level(logging.WARNING):
        scores, record = read_teacher(tmp_path / "t.npz", splits("judge-b"), LABELS)
    assert scores is None and record["used"] is False
    assert "another story-disjoint judge" in caplog.text


def test_a_missing_teacher_file_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="make teacher"):
        read_teacher(tmp_path / "absent.npz", splits("judge-a"), LABELS)


def test_rows_of_one_story_share_a_fold_and_stories_spread_over_all_folds() -> None:
    rows = [Example(f"title {i} {j}", "b", story=f"story-{i}") for i in range(200) for j in range(3)]
    folds = [fold_of(ex, 4) for ex in rows]
    assert all(len({folds[3 * i + j] for j in range(3)}) == 1 for i in range(200))
    assert sorted(set(folds)) == [0, 1, 2, 3] and min(folds.count(f) for f in range(4)) > 100


def test_target_loss_mixes_cross_entropy_and_distillation_only_where_a_row_has_teacher_scores() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    targets = torch.tensor([0, 3])
    none = torch.full((2, 4), float("nan"))
    ce = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    assert TargetLoss(distill_weight=0.5)(logits, targets, none) == pytest.approx(ce.mean().item())
    # Both are softened at the temperature, so a teacher whose probabilities are the student's adds nothing: only
    # (1 - w) of row 0's CE is left.
    agreeing = torch.softmax(logits, dim=1)
    agreeing[1] = float("nan")
    mixed = TargetLoss(distill_weight=0.5, temperature=2.0)(logits, targets, agreeing)
    assert mixed.item() == pytest.approx(((0.5 * ce[0] + ce[1]) / 2).item(), rel=1e-5)
    # A teacher that disagrees raises the loss above that.
    disagreeing = torch.tensor([[0.01, 0.01, 0.97, 0.01], [float("nan")] * 4])
    assert TargetLoss(distill_weight=0.5, temperature=2.0)(logits, targets, disagreeing).item() > mixed.item() + 0.1
