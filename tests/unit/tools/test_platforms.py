"""The supported platforms and Pythons, and `make setup`'s plain refusal of the others."""

from __future__ import annotations

import re

import pytest

from tests.support import REPO_ROOT
from tools import platforms


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


def test_make_setup_asks_before_it_makes_the_venv() -> None:
    recipe = (REPO_ROOT / "Makefile").read_text().split("$(STAMP): requirements-dev.lock\n", 1)[1]
    assert recipe.index("-m tools.platforms") < recipe.index("-m venv")


def test_each_torch_wheel_name_is_one_of_that_platforms_tags() -> None:
    for target, python in platforms.targets():
        tag = platforms.torch_wheel(target, "2.13.0", python).removesuffix(".whl").rsplit("-", 1)[-1]
        assert tag in target.pip_platforms
