"""What ships: `model.tar.gz`'s `code/` and the serving image carry `SERVING_FILES` exactly, never a tool, and the
packed `code/` serves on its own, with nothing of this repository on the import path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath

import pytest

from model.artifact import CODE_DIR, PACKAGE_DIR, SERVING_FILES, pack
from model.tools.image import REPO_ROOT, copied_files, dockerfile_copies

TOOLS = sorted(path.name for path in (PACKAGE_DIR / "tools").glob("*.py") if path.name != "__init__.py")
IMAGE_PROGRAM = PurePosixPath("/opt/program")
# What the image copies beside the Python files: its requirements and the `serve` entrypoint.
IMAGE_EXTRAS = {"model/serving/requirements-serve.txt", "model/serving/container/serve"}


@pytest.fixture
def packed_names(tiny_onnx_model_dir: Path, tmp_path: Path) -> set[str]:
    with tarfile.open(pack(tiny_onnx_model_dir, tmp_path / "model.tar.gz")) as tar:
        return set(tar.getnames())


def image_files() -> dict[str, PurePosixPath]:
    """Each file the Dockerfile copies (relative to the repository) and where it lands in the image."""
    landed = {}
    for copy in dockerfile_copies():
        for path in copied_files(copy):
            target = PurePosixPath(copy.destination)
            landed[path.relative_to(REPO_ROOT).as_posix()] = target / path.name if copy.destination.endswith("/") \
                else target
    return landed


def test_the_tools_exist_and_the_serving_files_are_real() -> None:
    assert {"bench.py", "bench_models.py", "deploy_endpoint.py", "image.py", "local_endpoint.py"} <= set(TOOLS)
    assert all((PACKAGE_DIR / name).is_file() for name in SERVING_FILES)


def test_the_tarball_code_is_the_handler_and_the_serving_files_and_no_tool(packed_names: set[str]) -> None:
    code = {name.removeprefix(f"{CODE_DIR}/model/") for name in packed_names if name.startswith(f"{CODE_DIR}/model/")}
    assert code == set(SERVING_FILES)
    assert f"{CODE_DIR}/inference.py" in packed_names
    assert not [name for name in packed_names if "tools" in PurePosixPath(name).parts
                or PurePosixPath(name).name in TOOLS]


def test_the_dockerfile_copies_exactly_the_serving_files_and_no_tool() -> None:
    landed = image_files()
    assert set(landed) == {f"model/{name}" for name in SERVING_FILES} | IMAGE_EXTRAS
    for name in SERVING_FILES:
        assert landed[f"model/{name}"] == IMAGE_PROGRAM / "model" / name
    assert not [source for source in landed if source.startswith("model/tools/") or Path(source).name in TOOLS]


HANDLER_RUN = """
import json, sys
code, model_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, code)
import inference
model = inference.model_fn(model_dir)
body = json.dumps({"inputs": ["Fed leaves interest rates unchanged", "Ebola outbreak spreads"]})
answer = inference.output_fn(inference.predict_fn(inference.input_fn(body, "application/json"), model),
                             "application/json")
print(json.dumps({"answer": json.loads(answer), "model": sys.modules["model"].__file__,
                  "tools": sorted(name for name in sys.modules if name.startswith("model.tools"))}))
"""


@pytest.mark.parametrize("runtime", ["onnx-int8", "torch"])
def test_the_packed_code_alone_serves_the_model(tiny_onnx_model_dir: Path, tmp_path: Path, runtime: str) -> None:
    """An isolated interpreter (-I: no PYTHONPATH, no working directory) in a folder outside the repository, with
    only the unpacked `code/` added to its path, runs the handler's four functions as the toolkit does."""
    unpacked = tmp_path / "opt-ml-model"
    with tarfile.open(pack(tiny_onnx_model_dir, tmp_path / "model.tar.gz")) as tar:
        tar.extractall(unpacked, filter="data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MODEL_RUNTIME": runtime}
    result = subprocess.run([sys.executable, "-I", "-c", HANDLER_RUN, str(unpacked / CODE_DIR), str(unpacked)],
                            capture_output=True, text=True, cwd=elsewhere, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert Path(outcome["model"]).is_relative_to(unpacked / CODE_DIR) and outcome["tools"] == []
    assert len(outcome["answer"]["predictions"]) == 2
    assert outcome["answer"]["model_version"] == json.loads((unpacked / "training.json").read_text())["model_version"]
