"""model.tar.gz as SageMaker's Hugging Face inference container runs it: unpacked elsewhere, code/ on the path.

A file or import missing from the tarball fails here, because the handler runs in an isolated
interpreter whose working directory and import path know nothing of this repository.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from model.artifact import pack, read_metadata
from model.labels import LabelMap

pytestmark = pytest.mark.slow
DRIVER = Path(__file__).with_name("toolkit_handler_driver.py")
REQUESTS = [
    {"body": json.dumps({"inputs": "Fed leaves interest rates unchanged"}), "content_type": "application/json"},
    {"body": json.dumps({"inputs": ["Apple unveils new iPhone", "Ebola outbreak spreads"]}),
     "content_type": "application/json", "accept": "*/*"},
    {"body": "Fed leaves interest rates unchanged", "content_type": "text/csv"},
    {"body": json.dumps({"inputs": []}), "content_type": "application/json"},
    # What Batch Transform sends in MultiRecord mode with Accept=application/jsonlines: one answer per line.
    {"body": '{"inputs": "Apple unveils new iPhone"}\n\n{"inputs": "Ebola outbreak spreads"}\n',
     "content_type": "application/jsonlines", "accept": "application/jsonlines"},
]


@pytest.fixture(scope="module")
def unpacked_model(tiny_onnx_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our model.tar.gz (with its ONNX models) extracted into a fresh folder, like /opt/ml/model."""
    scratch = tmp_path_factory.mktemp("toolkit")
    source = Path(shutil.copytree(tiny_onnx_model_dir, scratch / "source"))
    tar_path = pack(source, scratch / "model.tar.gz")
    target = scratch / "opt-ml-model"
    with tarfile.open(tar_path) as tar:
        tar.extractall(target, filter="data")
    return target


def run_handler(model_dir: Path, cwd: Path, runtime: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-I", str(DRIVER), str(model_dir)], input=json.dumps(REQUESTS), capture_output=True,
        text=True, cwd=cwd, env={"PATH": "/usr/bin:/bin", "MODEL_RUNTIME": runtime, "HF_HUB_OFFLINE": "1"},
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize(("runtime", "loads_torch"), [("torch", True), ("auto", False)])
def test_unpacked_tarball_serves_through_the_toolkit_contract(unpacked_model: Path, tmp_path: Path,
                                                              runtime: str, loads_torch: bool) -> None:
    outcome = run_handler(unpacked_model, tmp_path, runtime)
    ok_single, ok_batch, wrong_type, empty, json_lines = outcome["responses"]
    names = list(LabelMap.load(unpacked_model).names)
    for response, count in ((ok_single, 1), (ok_batch, 2)):
        assert response["status"] == 200 and response["content_type"] == "application/json"
        body = json.loads(response["body"])
        assert body["model_version"] == read_metadata(unpacked_model)["model_version"]
        assert [list(p["scores"]) for p in body["predictions"]] == [names] * count
    assert wrong_type["status"] == 400 and "unsupported content type" in wrong_type["message"]
    assert empty["status"] == 400 and "non-empty list" in empty["message"]
    assert json_lines["status"] == 200 and json_lines["content_type"] == "application/jsonlines"
    answers = [json.loads(line) for line in json_lines["body"].split("\n")]
    assert [sorted(answer) for answer in answers] == [["label", "model_version", "scores"], ["error", "model_version"],
                                                      ["label", "model_version", "scores"]]
    assert Path(outcome["modules"]["model"]).is_relative_to(unpacked_model / "code")
    assert (outcome["modules"]["torch"] is not None) == loads_torch


def test_tarball_records_the_runtimes_it_carries(unpacked_model: Path) -> None:
    runtimes = read_metadata(unpacked_model)["runtimes"]
    assert set(runtimes) == {"torch", "onnx", "onnx-int8"}
    for files in runtimes.values():
        assert all((unpacked_model / name).is_file() for name in files)
