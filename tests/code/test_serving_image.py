"""The slim serving image, without docker: its `serve` entrypoint as SageMaker calls it, and its dependency set."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import pytest
from test_requirements import canonical, pins

from model.artifact import pack
from model.local_endpoint import REPO_ROOT, running_server, unused_port
from tools import sync_pins

pytestmark = pytest.mark.slow
MODEL = REPO_ROOT / "model"
SERVE_REQUIREMENTS = MODEL / "requirements-serve.txt"


def test_serve_entrypoint_answers_like_a_sagemaker_container(tiny_onnx_model_dir: Path, tmp_path: Path) -> None:
    """`serve` with SageMaker's environment and the tarball unpacked where /opt/ml/model would be."""
    opt_ml_model = tmp_path / "opt" / "ml" / "model"
    with tarfile.open(pack(tiny_onnx_model_dir, tmp_path / "model.tar.gz")) as tar:
        tar.extractall(opt_ml_model, filter="data")
    port = unused_port()
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT),
           "SM_MODEL_DIR": str(opt_ml_model), "SAGEMAKER_BIND_TO_PORT": str(port), "MODEL_RUNTIME": "onnx-int8"}
    # The image binds 0.0.0.0; tests bind loopback only, so the one extra argument narrows the host.
    command = [str(MODEL / "container" / "serve"), "--host", "127.0.0.1"]
    with running_server(command, f"http://127.0.0.1:{port}", env=env, cwd=tmp_path, log_path=tmp_path / "log"):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                         data=json.dumps({"inputs": ["Fed leaves rates unchanged"]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert len(json.loads(response.read())["predictions"]) == 1
    loaded = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()
              if '"endpoint loaded"' in line]
    assert [(e["runtime"], e["model_dir"]) for e in loaded] == [("onnx-int8", str(opt_ml_model))]


def test_serve_requirements_pin_every_line_and_leave_out_the_training_stack() -> None:
    """Their versions are the tested ones by tests/code/test_requirements.py; here, what --no-deps needs (a version
    on every line) and what the image must not carry."""
    entries = sync_pins.entries(SERVE_REQUIREMENTS.read_text())
    assert len(pins(SERVE_REQUIREMENTS)) == len(entries), entries
    assert not {"torch", "transformers", "safetensors", "huggingface-hub"} & set(pins(SERVE_REQUIREMENTS))


SERVING_PROBE = """
import json, sys, threading, time, urllib.request
from importlib import metadata
from pathlib import Path
import uvicorn
from model.serve import ServeSettings, create_app, server_config

port = int(sys.argv[2])
app = create_app({"news-classifier": Path(sys.argv[1])}, "news-classifier", ServeSettings(runtime="onnx-int8"))
server = uvicorn.Server(server_config(app, "127.0.0.1", port, timeout_s=60))
thread = threading.Thread(target=server.run)
thread.start()
while not server.started:
    time.sleep(0.05)
request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=b'{"inputs": "Fed holds rates"}',
                                 headers={"Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=30).read()
server.should_exit = True
thread.join()
owners = metadata.packages_distributions()
top_level = {name.split(".")[0] for name in sys.modules} - {"_distutils_hack"}  # setuptools' .pth shim
print(json.dumps(sorted({dist for name in top_level for dist in owners.get(name, [])})))
"""


def test_serving_imports_nothing_outside_the_slim_requirements(tiny_onnx_model_dir: Path) -> None:
    """The image installs requirements-serve.txt with --no-deps, so serving must need nothing else."""
    result = subprocess.run([sys.executable, "-c", SERVING_PROBE, str(tiny_onnx_model_dir), str(unused_port())],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {canonical(dist) for dist in json.loads(result.stdout.splitlines()[-1])}
    assert imported <= set(pins(SERVE_REQUIREMENTS)), imported - set(pins(SERVE_REQUIREMENTS))
    assert {"onnxruntime", "tokenizers", "uvicorn", "starlette"} <= imported


def test_dockerfile_installs_only_the_slim_requirements_and_starts_serve() -> None:
    dockerfile = (MODEL / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs and all("--no-deps" in line and "requirements-serve.txt" in line for line in installs)
    assert 'CMD ["serve"]' in dockerfile
