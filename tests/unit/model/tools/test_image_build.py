"""The slim serving image, proven by construction where docker cannot run.

`image_root` follows model/serving/Dockerfile instruction by instruction into a folder that stands for the image's `/`:
a fresh virtual environment (no system or user site-packages) stands for the base image's Python, each RUN's
`pip install` runs in it with the Dockerfile's own flags, each COPY copies what it names, ENV/WORKDIR/CMD are
read from the file. The test then starts CMD the way SageMaker does (`serve`, model.tar.gz unpacked where
/opt/ml/model would be, the Model's environment from model/tools/image.py) and calls `/ping` and `/invocations`. A
file the Dockerfile does not copy, or a package requirements-serve.txt does not pin, fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import venv
from fnmatch import fnmatchcase
from pathlib import Path
from typing import NamedTuple

import pytest

from locking import lockfile
from locking.lockfile import canonical
from model.artifact import pack, read_metadata
from model.labels import LabelMap
from model.tools.image import DOCKERFILE, copied_files, dockerfile_copies, instructions, parse_copy, slim_image
from model.tools.local_endpoint import REPO_ROOT, running_server
from tests.support.pins import pins

pytestmark = pytest.mark.slow
SERVE_REQUIREMENTS = REPO_ROOT / "model" / "serving" / "requirements-serve.txt"
DOCKERIGNORE = DOCKERFILE.with_name("Dockerfile.dockerignore")
# RUN steps that only set who runs the server: the emulation runs as the test's user.
NOT_EMULATED = ("useradd",)


class ImageRoot(NamedTuple):
    root: Path  # stands for the image's /
    venv: Path  # stands for the base image's Python
    environment: dict[str, str]  # ENV, image paths moved under root
    workdir: Path
    command: list[str]  # CMD
    pip_installs: list[list[str]]  # what the RUN steps installed, as run


def under(root: Path, image_path: str) -> Path:
    return root / image_path.lstrip("/")


def moved(root: Path, value: str) -> str:
    """An ENV value with each absolute image path (colon-separated) moved under root."""
    return os.pathsep.join(str(under(root, part)) if part.startswith("/") else part for part in value.split(":"))


def copy_into(root: Path, instruction: str, arguments: str) -> None:
    copy = parse_copy(instruction, arguments)
    files = copied_files(copy, REPO_ROOT)
    into_folder = copy.destination.endswith("/") or len(files) > 1
    for source in files:
        target = under(root, copy.destination) / source.name if into_folder else under(root, copy.destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def run_step(root: Path, python: Path, arguments: str) -> list[list[str]]:
    """A RUN: its `pip install` commands run with the venv's pip; anything else must be in NOT_EMULATED."""
    installs = []
    for step in arguments.split("&&"):
        words = shlex.split(step)
        if words[:2] == ["pip", "install"]:
            command = [str(python), "-m", "pip", *(str(under(root, w)) if w.startswith("/") else w for w in words[1:])]
            subprocess.run(command, check=True, capture_output=True, timeout=600)
            installs.append(words)
        else:
            assert words[0] in NOT_EMULATED, f"RUN step not emulated: {step.strip()}"
    return installs


def lay_out(root: Path) -> ImageRoot:
    python_home = root / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(python_home)
    python = python_home / "bin" / "python"
    environment: dict[str, str] = {}
    workdir, command, installs = root, [], []
    for instruction, arguments in instructions(DOCKERFILE):
        if instruction == "COPY":
            copy_into(root, instruction, arguments)
        elif instruction == "RUN":
            installs += run_step(root, python, arguments)
        elif instruction == "ENV":
            environment |= {key: moved(root, value) for key, value in
                            (pair.split("=", 1) for pair in shlex.split(arguments))}
        elif instruction == "WORKDIR":
            workdir = under(root, arguments)
        elif instruction == "CMD":
            command = json.loads(arguments)
        else:
            assert instruction in {"FROM", "USER", "EXPOSE"}, f"{instruction} is not emulated"
    return ImageRoot(root, python_home, environment, workdir, command, installs)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> ImageRoot:
    return lay_out(tmp_path_factory.mktemp("image") / "root")


def installed(python_home: Path) -> dict[str, str]:
    listed = subprocess.run([str(python_home / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, check=True, timeout=120).stdout
    return {canonical(d["name"]): d["version"] for d in json.loads(listed)}


def test_the_image_installs_exactly_the_serve_requirements_without_their_dependencies(image_root: ImageRoot) -> None:
    assert image_root.pip_installs and all("--no-deps" in words for words in image_root.pip_installs)
    bundled = {"pip", "setuptools"}  # what python -m venv (and the base image) ship
    assert {name: version for name, version in installed(image_root.venv).items() if name not in bundled} == \
        pins(SERVE_REQUIREMENTS)


def test_serve_in_the_image_answers_ping_and_invocations_like_a_sagemaker_container(
        image_root: ImageRoot, tiny_onnx_model_dir: Path, tmp_path: Path) -> None:
    """`serve` from the venv and the copied files alone, with the artifact and environment a deployment gives it."""
    image = slim_image("example/news-classifier:serve")
    opt_ml_model = under(image_root.root, "/opt/ml/model")
    with tarfile.open(pack(tiny_onnx_model_dir, tmp_path / "model.tar.gz", image.runtime,
                           image.code_in_artifact)) as tar:
        tar.extractall(opt_ml_model, filter="data")
    path = os.pathsep.join([str(under(image_root.root, "/usr/local/bin")), str(image_root.venv / "bin"), "/usr/bin",
                            "/bin"])
    env = {"PATH": path, "PYTHONNOUSERSITE": "1", **image_root.environment, **image.environment,
           "SM_MODEL_DIR": str(opt_ml_model), "SAGEMAKER_BIND_TO_PORT": "0"}  # 0: a free port, logged
    entrypoint = shutil.which(image_root.command[0], path=path)
    assert entrypoint == str(under(image_root.root, "/usr/local/bin/serve"))
    # The image binds 0.0.0.0; tests bind loopback only, so the one extra argument narrows the host.
    command = [entrypoint, *image_root.command[1:], "--host", "127.0.0.1"]
    with running_server(command, env=env, cwd=image_root.workdir, log_path=tmp_path / "log") as server:
        url = server.url
        with urllib.request.urlopen(f"{url}/ping", timeout=10) as response:
            assert response.status == 200
        request = urllib.request.Request(f"{url}/invocations", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"inputs": ["Fed leaves rates unchanged",
                                                                     "Ebola outbreak spreads"]}).encode())
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
    assert body["model_version"] == read_metadata(tiny_onnx_model_dir)["model_version"]
    assert [list(p["scores"]) for p in body["predictions"]] == [list(LabelMap.load(tiny_onnx_model_dir).names)] * 2
    loaded = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines() if '"endpoint loaded"' in line]
    assert [(e["runtime"], e["model_dir"]) for e in loaded] == [("onnx-int8", str(opt_ml_model))]


def test_the_serve_requirements_pin_every_line_and_leave_out_the_training_stack() -> None:
    """Their versions are the tested ones by tests/unit/locking/test_sync_pins.py; here, what --no-deps needs (a version
    on every line) and what the image must not carry."""
    entries = lockfile.entries(SERVE_REQUIREMENTS.read_text())
    assert len(pins(SERVE_REQUIREMENTS)) == len(entries), entries
    assert not {"torch", "transformers", "safetensors", "huggingface-hub"} & set(pins(SERVE_REQUIREMENTS))


def in_build_context(relative: str) -> bool:
    """Docker's rule for a .dockerignore: the last pattern matching the path (or a parent folder) decides."""
    included = True
    for line in DOCKERIGNORE.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        keep, pattern = pattern.startswith("!"), pattern.lstrip("!")
        parts = Path(relative).parts
        if any(fnmatchcase("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1)):
            included = keep
    return included


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_else() -> None:
    copied = {str(path.relative_to(REPO_ROOT)) for copy in dockerfile_copies() for path in copied_files(copy)}
    assert all(in_build_context(name) for name in copied), [n for n in copied if not in_build_context(n)]
    assert not in_build_context("artifacts/model/model.safetensors") and not in_build_context("chalice_app/app.py")


def test_the_base_is_pinned_by_digest_and_every_install_checks_hashes() -> None:
    """A tag can be moved to other bytes, a digest cannot; a requirements file stripped of its hashes is refused."""
    steps = instructions(DOCKERFILE)
    assert all(re.search(r"@sha256:[0-9a-f]{64}$", base) for step, base in steps if step == "FROM")
    installs = [run for step, run in steps if step == "RUN" and "pip install" in run]
    assert installs and all("--require-hashes" in run for run in installs)


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
