"""model.tar.gz as SageMaker's Hugging Face inference container runs it: unpacked elsewhere, code/ on the path.

A file or import missing from the tarball fails here, because the handler runs in an isolated
interpreter whose working directory and import path know nothing of this repository. The tarball is the one
model/tools/deploy_endpoint.py makes for the Hugging Face image (PyTorch files only, with code/), served with that
image's
environment, through a mirror of the toolkit's contract and through the real toolkit and model server.
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
from model.runtime import AUTO, TORCH
from model.tools.image import HUGGING_FACE_IMAGE, huggingface_image
from tests.support import REPO_ROOT

pytestmark = pytest.mark.slow
DRIVER = REPO_ROOT / "tests" / "support" / "toolkit_handler_driver.py"
HF_IMAGE = huggingface_image("us-east-1")
# The default image's toolkit stack (its transformers major, 5, is the development environment's), installed
# --no-deps beside the environment's torch and transformers; its other dependencies serve other model kinds.
TOOLKIT = ["sagemaker-huggingface-inference-toolkit==2.6.0", "sagemaker-inference==1.10.1",
           "multi-model-server==1.1.11", "retrying==1.4.2"]
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
    """The Hugging Face image's model.tar.gz of a folder with ONNX models, extracted like /opt/ml/model."""
    scratch = tmp_path_factory.mktemp("toolkit")
    source = Path(shutil.copytree(tiny_onnx_model_dir, scratch / "source"))
    tar_path = pack(source, scratch / "model.tar.gz", HF_IMAGE.runtime, HF_IMAGE.code_in_artifact)
    target = scratch / "opt-ml-model"
    with tarfile.open(tar_path) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture(scope="module")
def toolkit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("toolkit-packages")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--target", str(target), *TOOLKIT], check=True, capture_output=True, timeout=600)
    return target


def run_handler(model_dir: Path, cwd: Path, environment: dict[str, str], toolkit: Path | None = None
                ) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-I", str(DRIVER), str(model_dir), *([str(toolkit)] if toolkit else [])],
        input=json.dumps(REQUESTS), capture_output=True, text=True, cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **environment}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("environment", [HF_IMAGE.environment, HF_IMAGE.environment | {"MODEL_RUNTIME": AUTO}],
                         ids=["deployed", "auto"])
def test_unpacked_tarball_serves_through_the_toolkit_contract(unpacked_model: Path, tmp_path: Path,
                                                              environment: dict[str, str]) -> None:
    """PyTorch both times: the tarball carries no ONNX model, so `auto` has nothing else to choose."""
    assert_served_with_torch(run_handler(unpacked_model, tmp_path, environment), unpacked_model)


def test_unpacked_tarball_serves_through_the_real_toolkit_and_model_server(unpacked_model: Path, tmp_path: Path,
                                                                           toolkit_dir: Path) -> None:
    outcome = run_handler(unpacked_model, tmp_path, HF_IMAGE.environment, toolkit_dir)
    assert outcome["transformers"].split(".")[0] == HUGGING_FACE_IMAGE["version"].split(".")[0]
    assert_served_with_torch(outcome, unpacked_model)


def assert_served_with_torch(outcome: dict[str, Any], unpacked_model: Path) -> None:
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
    assert outcome["modules"]["torch"] is not None and outcome["modules"]["onnxruntime"] is None


def test_tarball_records_the_runtime_it_carries_and_no_onnx_model(unpacked_model: Path) -> None:
    runtimes = read_metadata(unpacked_model)["runtimes"]
    assert set(runtimes) == {TORCH}
    assert all((unpacked_model / name).is_file() for name in runtimes[TORCH])
    assert not list(unpacked_model.glob("*.onnx"))
