"""`make lock`'s rewrite of the resolver's output: torch per platform from the recorded files, CUDA-only packages
out, anything else untouched; and each committed lock is what `make lock` makes of its requirements today."""

from __future__ import annotations

import re
import shutil
import urllib.request
from pathlib import Path

import pytest

from locking import lock
from locking.lockfile import for_environment, parse
from locking.platforms import PLATFORMS, marker_environment
from tests.support import REPO_ROOT
from tests.support.pins import LOCKS

LINUX, MACOS = PLATFORMS


def digest(char: str) -> str:
    return "sha256:" + char * 64


RECORDED = {"torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl": digest("1"),
            "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl": digest("2"),
            "torch-2.13.0-cp311-cp311-macosx_14_0_arm64.whl": digest("3"),
            "torch-2.13.0-cp312-cp312-macosx_14_0_arm64.whl": digest("4")}
RESOLVED = f"""\
nvidia-cublas==13.1.1.3 ; sys_platform == 'linux' \\
    --hash={digest("c")}
    # via
    #   cuda-toolkit
    #   torch
six==1.17.0 \\
    --hash={digest("5")}
    # via python-dateutil
torch==2.13.0 \\
    --hash={digest("3")} \\
    --hash={digest("4")} \\
    --hash={digest("9")}
    # via -r requirements-dev.txt
triton==3.7.1 ; python_full_version < '3.15' and sys_platform == 'linux' \\
    --hash={digest("d")}
    # via torch
"""


def test_torch_gets_one_entry_per_platform_and_the_cuda_build_its_packages_go() -> None:
    finished = parse(lock.finished(RESOLVED, RECORDED))
    assert [entry.name for entry in finished] == ["six", "torch", "torch"]
    linux = for_environment(finished, marker_environment(LINUX, "3.12"))["torch"]
    mac = for_environment(finished, marker_environment(MACOS, "3.11"))["torch"]
    assert (linux.version, linux.hashes) == ("2.13.0+cpu", {digest("1"), digest("2")})
    assert (mac.version, mac.hashes) == ("2.13.0", {digest("3"), digest("4")})
    assert "# via -r requirements-dev.txt" in lock.finished(RESOLVED, RECORDED).split("torch==2.13.0 ;")[1]


def test_a_lock_without_torch_is_left_as_resolved() -> None:
    resolved = RESOLVED.split("torch==")[0]
    assert lock.finished(resolved, RECORDED) == resolved


@pytest.mark.parametrize(("recorded", "resolved", "said"), [
    ({name: d for name, d in RECORDED.items() if "cp312-cp312-macosx" not in name}, RESOLVED,
     "no digest for torch-2.13.0-cp312-cp312-macosx_14_0_arm64.whl"),
    ({**RECORDED, "torch-2.13.0-cp311-cp311-macosx_14_0_arm64.whl": digest("8")}, RESOLVED, "PyPI does not list"),
    (RECORDED, RESOLVED.replace("    #   torch\n", "    #   torch\n    #   jax\n"),
     r"nvidia-cublas is required by \['jax'\]"),
])
def test_what_cannot_become_a_lock_for_every_platform_stops_it(recorded: dict[str, str], resolved: str,
                                                               said: str) -> None:
    with pytest.raises(lock.LockError, match=said):
        lock.finished(resolved, recorded)


def test_the_recorded_wheels_are_read_from_sha256sum_lines() -> None:
    recorded = lock.recorded_wheels(lock.TORCH_WHEELS.read_text())
    assert recorded["torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"] == \
        "sha256:6746dbcbeb526eb61330b76b41ff1b4eb848951103a892eeb080dfa2b264667b"
    assert len(recorded) == len(PLATFORMS) * 2


@pytest.mark.parametrize("locked", LOCKS, ids=lambda locked: locked.name)
def test_the_lock_is_what_make_lock_makes_of_its_requirements(tmp_path: Path, locked: Path) -> None:
    """uv keeps the lock's versions where they fit, so this fails only when the lock's .txt (or the recorded torch
    files, or the lock's constraints) changed without `make lock`."""
    try:
        urllib.request.urlopen(lock.PYPI + "/pip/", timeout=10).close()
    except OSError as error:
        pytest.skip(f"PyPI cannot be reached ({error}): the resolution needs it")
    for relative in (locked.name, locked.with_suffix(".txt").name, *lock.CONSTRAINTS.get(locked.name, ())):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / relative, tmp_path / relative)
    assert lock.main([str(tmp_path / locked.name)]) == 0
    assert (tmp_path / locked.name).read_text() == locked.read_text()


def test_make_lock_and_check_lock_take_every_lock() -> None:
    (listed,) = re.findall(r"^LOCKS \?= (.+)$", (REPO_ROOT / "Makefile").read_text(), flags=re.M)
    assert sorted(listed.split()) == [locked.name for locked in LOCKS]


def test_the_development_lock_leaves_the_docs_tools_to_their_own() -> None:
    """MkDocs needs watchdog, and `chalice local`'s reloader restarts on every file read when watchdog is importable
    (tests/unit/chalice_app/test_app_autoreload.py): the docs tools belong in requirements-docs.txt only."""
    development = {entry.name for entry in parse((REPO_ROOT / "requirements-dev.lock").read_text())}
    assert {"mkdocs", "watchdog"} & development == set()
    assert {"mkdocs", "watchdog"} <= {entry.name for entry in parse((REPO_ROOT / "requirements-docs.lock").read_text())}
