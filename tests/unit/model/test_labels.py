"""The label map: the UCI codes by default, saved in and read from the model folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.labels import LabelMap


def test_default_label_map_follows_the_uci_codes() -> None:
    labels = LabelMap.default()
    assert dict(zip(labels.categories, labels.names, strict=True)) == {
        "b": "Business", "t": "Science", "e": "Entertainment", "m": "Health"}


def test_label_map_round_trips_through_the_model_folder(tmp_path: Path) -> None:
    custom = LabelMap(("m", "b"), ("Health", "Business"))
    custom.save(tmp_path)
    assert LabelMap.load(tmp_path) == custom
    assert LabelMap.load(tmp_path).index_of_category("b") == 1


def test_missing_label_map_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no label map"):
        LabelMap.load(tmp_path)
