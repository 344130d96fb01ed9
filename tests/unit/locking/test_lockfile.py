"""Reading lock entries: markers, versions and hashes, one entry per name on each platform."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from locking import lockfile
from locking.platforms import PLATFORMS, marker_environment

LINUX, MACOS = (marker_environment(target, "3.11") for target in PLATFORMS)
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
LOCK = (f"Torch==2.13.0+cpu ; sys_platform == 'linux' and platform_machine == 'x86_64' \\\n    --hash={A}\n"
        "    # via -r requirements-dev.txt\n"
        f"torch==2.13.0 ; sys_platform == 'darwin' and platform_machine == 'arm64' \\\n    --hash={B}\n"
        f"six==1.17.0 \\\n    --hash={A} \\\n    --hash={B}\n")


def test_entries_carry_their_marker_version_and_hashes() -> None:
    linux_torch, _, six = lockfile.parse(LOCK)
    assert linux_torch == lockfile.Entry("torch", "Torch", "2.13.0+cpu",
                                         "sys_platform == 'linux' and platform_machine == 'x86_64'", frozenset({A}))
    assert six == lockfile.Entry("six", "six", "1.17.0", "", frozenset({A, B}))
    assert lockfile.requirement_line(linux_torch) == LOCK.split("\n    #")[0]


def test_each_platform_sees_its_own_entry_of_a_name() -> None:
    assert lockfile.for_environment(lockfile.parse(LOCK), LINUX)["torch"].version == "2.13.0+cpu"
    assert lockfile.for_environment(lockfile.parse(LOCK), MACOS)["torch"].version == "2.13.0"
    with pytest.raises(ValueError, match="six is locked twice"):
        lockfile.for_environment(lockfile.parse(LOCK + "six==1.16.0 --hash=" + A + "\n"), LINUX)


def test_plain_files_reject_markers_they_cannot_read_without_a_platform() -> None:
    assert lockfile.pins("six==1.17.0\nrich\n") == {"six": "1.17.0"}
    with pytest.raises(ValueError, match="torch"):
        lockfile.pins(LOCK)


def test_the_cpu_index_entries_are_the_cpu_builds_with_their_markers(tmp_path: Path) -> None:
    """`make setup` installs these first, from the PyTorch CPU index; pip skips the ones of other platforms."""
    (tmp_path / "x.lock").write_text(LOCK)
    printed = subprocess.run([sys.executable, "-m", "locking.lockfile", "cpu-index", str(tmp_path / "x.lock")],
                             capture_output=True, text=True, check=True).stdout
    assert printed == LOCK.split("\n    #")[0] + "\n"
