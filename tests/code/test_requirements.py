"""One set of versions: every pinned requirements file agrees with requirements-dev.lock, and the suite runs on it.

A fresh clone installs whatever PyPI holds that day unless the lock constrains it; these tests fail when a pin
and the lock disagree (a deployed image or Lambda would run versions the suite never ran) or when the running
environment is not the lock (the suite's result would say nothing about what CI installs).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

from model.local_endpoint import REPO_ROOT

LOCK = REPO_ROOT / "requirements-dev.lock"
PINNED_FILES = ["requirements-dev.txt", "model/requirements-serve.txt", "chalice_app/requirements.txt",
                "training_jobs/requirements-sagemaker.txt"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines (extras dropped); unpinned names and comments are not pins."""
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    pairs = [line.split("==", 1) for line in lines if "==" in line]
    return {canonical(name.split("[")[0]): version for name, version in pairs}


def test_the_lock_pins_every_line_to_one_version() -> None:
    lines = [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.]+", line) for line in lines), lines
    assert len(pins(LOCK)) == len(lines), "a distribution is locked twice"


@pytest.mark.parametrize("requirements", PINNED_FILES)
def test_pins_agree_with_the_lock(requirements: str) -> None:
    locked = pins(LOCK)
    pinned = pins(REPO_ROOT / requirements)
    assert pinned, f"{requirements} pins nothing"
    assert {name: (version, locked.get(name)) for name, version in pinned.items() if locked.get(name) != version} == {}


def test_every_direct_requirement_is_locked() -> None:
    lines = [line.split("#")[0].strip() for line in (REPO_ROOT / "requirements-dev.txt").read_text().splitlines()]
    direct = {canonical(re.split(r"[\[=<>~!]", line)[0]) for line in lines if line}
    assert direct - set(pins(LOCK)) == set()


def test_the_environment_is_the_lock() -> None:
    """`make setup` installs under the lock; a different version here means the suite is not testing it."""
    installed = {name: metadata.version(name) for name in pins(LOCK)}
    drift = {name: (version, installed[name].split("+")[0]) for name, version in pins(LOCK).items()
             if installed[name].split("+")[0] != version}
    assert drift == {}, "run `make setup` (versions: locked, installed)"
