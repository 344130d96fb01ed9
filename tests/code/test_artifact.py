"""model.tar.gz: the SageMaker Hugging Face inference layout, carrying the one model package."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from model.artifact import pack


def test_tarball_has_model_files_at_the_root_and_code_beside_them(tiny_model_copy: Path, tmp_path: Path) -> None:
    tar_path = pack(tiny_model_copy, tmp_path / "model.tar.gz")
    with tarfile.open(tar_path) as tar:
        names = set(tar.getnames())
    assert {"model.safetensors", "config.json", "tokenizer.json", "labels.json", "training.json",
            "code/inference.py", "code/model/classifier.py", "code/model/labels.py"} <= names
    assert not any("__pycache__" in n or n.startswith("/") or ".." in n for n in names)
    assert "code/requirements.txt" not in names


def test_packing_refuses_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"training\.json"):
        pack(tmp_path, tmp_path / "model.tar.gz")
