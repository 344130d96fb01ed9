"""The supported platforms and Pythons, and the plain refusal of the others before either venv is made."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from locking import platforms
from tests.support import REPO_ROOT


@pytest.mark.parametrize(("python", "system", "machine"), [("3.11", "Linux", "x86_64"), ("3.12", "Darwin", "arm64")])
def test_supported_interpreters_pass(python: str, system: str, machine: str) -> None:
    assert platforms.problems(python, system, machine) == []


@pytest.mark.parametrize(("python", "system", "machine", "said"), [
    ("3.10", "Linux", "x86_64", "Python 3.10 is not supported.*PYTHON=python3"),
    ("3.13", "Darwin", "arm64", "Python 3.13 is not supported"),
    ("3.11", "Linux", "aarch64", "Linux aarch64 is not a platform the lock covers.*docs/setup.md"),
    ("3.11", "Darwin", "x86_64", "Darwin x86_64 is not a platform"),
    ("3.11", "Windows", "AMD64", "Windows AMD64 is not a platform"),
])
def test_others_are_told_why_and_what_to_do(python: str, system: str, machine: str, said: str) -> None:
    assert re.search(said, " ".join(platforms.problems(python, system, machine)))


def test_the_command_fails_with_the_message(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(platforms.platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(platforms.platform, "system", lambda: "Linux")
    assert platforms.main() == 1
    assert "make setup:" in capsys.readouterr().err


@pytest.mark.parametrize(("venv", "lock"), [("VENV", "requirements-dev.lock"), ("DOCS_VENV", "requirements-docs.lock")])
def test_make_asks_the_python_before_it_makes_either_venv_then_installs_its_lock_hash_checked(
        tmp_path: Path, venv: str, lock: str) -> None:
    """.venv (`make setup`) and .venv-docs (`make docs`, `make test`) alike, as `make -n` lists a fresh one's steps."""
    made = tmp_path / "venv"
    listed = subprocess.run(["make", "--no-print-directory", "-n", "-B", f"{venv}={made}", "PYTHON=python3.x",
                             f"{made}/.requirements-installed"], cwd=REPO_ROOT, capture_output=True, text=True,
                            check=True).stdout.splitlines()
    asks = listed.index("python3.x -m locking.platforms")
    makes = listed.index(f"test -x {made}/bin/python || python3.x -m venv {made}")
    installs = [step for step in listed if step.startswith(f"{made}/bin/python -m pip install")][-1]
    assert asks < makes < listed.index(installs)
    assert re.fullmatch(rf"\S+ -m pip install .* --require-hashes -r {re.escape(lock)}", installs)


def test_each_torch_wheel_name_is_one_of_that_platforms_tags() -> None:
    for target, python in platforms.targets():
        tag = platforms.torch_wheel(target, "2.13.0", python).removesuffix(".whl").rsplit("-", 1)[-1]
        assert tag in target.pip_platforms
