"""model.tar.gz: the SageMaker Hugging Face inference layout, carrying the one model package, for one runtime or all."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from model.artifact import pack, read_metadata
from model.runtime import ONNX_INT8, TORCH


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


def packed(model_dir: Path, output: Path, runtime: str, with_code: bool) -> tuple[set[str], dict]:
    with tarfile.open(pack(model_dir, output, runtime, with_code)) as tar:
        metadata = json.load(tar.extractfile("training.json"))
        return set(tar.getnames()), metadata


def test_a_tarball_for_one_runtime_carries_only_its_model_and_records_only_it(tiny_onnx_model_dir: Path,
                                                                              tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_onnx_model_dir, tmp_path / "model"))
    everything, _ = packed(folder, tmp_path / "all.tar.gz", None, True)
    assert {"model.safetensors", "model.onnx", "model.int8.onnx"} <= everything

    torch_names, torch_metadata = packed(folder, tmp_path / "torch.tar.gz", TORCH, True)
    assert torch_names == everything - {"model.onnx", "model.int8.onnx"}
    assert torch_metadata["runtimes"] == {TORCH: ["model.safetensors"]}

    int8_names, int8_metadata = packed(folder, tmp_path / "int8.tar.gz", ONNX_INT8, False)
    assert int8_names == {n for n in everything if not n.startswith("code/")} - {"model.safetensors", "model.onnx"}
    assert {"tokenizer.json", "tokenizer_config.json", "labels.json"} <= int8_names
    assert int8_metadata["runtimes"] == {ONNX_INT8: ["model.int8.onnx", "tokenizer.json"]}
    assert {k: v for k, v in int8_metadata.items() if k != "runtimes"} == \
        {k: v for k, v in read_metadata(folder).items() if k != "runtimes"}


def test_packing_for_a_runtime_the_folder_lacks_is_a_clear_error(tiny_model_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no onnx-int8 model.*make export-onnx"):
        pack(tiny_model_copy, tmp_path / "model.tar.gz", ONNX_INT8)
