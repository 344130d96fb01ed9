"""pip run for another platform (locking/foreign_pip.py): the target's markers decide, no pip configuration is read.

Offline: tiny wheels in a local index. Each test also runs plain pip the same way, so that it fails if pip ever
starts doing the right thing by itself (the workaround would then be dead code) or the workaround stops taking hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from locking.platforms import PLATFORMS, Platform, marker_environment
from tests.support.wheels import make_wheel, simple_index

LINUX, MACOS = PLATFORMS


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("wheels")
    wheels = [make_wheel(folder, "app", "1.0", ['only-mac ; sys_platform == "darwin"',
                                                'only-linux ; sys_platform == "linux"']),
              make_wheel(folder, "only-mac", "1.0"), make_wheel(folder, "only-linux", "1.0")]
    return simple_index(folder / "simple", wheels)


def resolve(runner: list[str], index: str, tmp_path: Path, requirement: str = "app",
            environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    report = tmp_path / "report.json"
    command = [*runner, "install", "--isolated", "--dry-run", "--ignore-installed", "--quiet", "--no-cache-dir",
               "--index-url", index, "--report", str(report), requirement]
    cleared = {name: value for name, value in os.environ.items() if not name.startswith("PIP_")}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env={**cleared, **(environment or {})})


def installed(tmp_path: Path) -> set[str]:
    return {item["metadata"]["name"] for item in json.loads((tmp_path / "report.json").read_text())["install"]}


def foreign(target: Platform, python: str = "3.12") -> list[str]:
    return [sys.executable, "-m", "locking.foreign_pip", json.dumps(marker_environment(target, python))]


def test_dependencies_follow_the_target_platforms_markers(index: str, tmp_path: Path) -> None:
    assert resolve(foreign(MACOS), index, tmp_path).returncode == 0
    assert installed(tmp_path) == {"app", "only-mac"}
    assert resolve(foreign(LINUX), index, tmp_path).returncode == 0
    assert installed(tmp_path) == {"app", "only-linux"}
    assert resolve([sys.executable, "-m", "pip"], index, tmp_path).returncode == 0
    host = "only-mac" if sys.platform == "darwin" else "only-linux"
    assert installed(tmp_path) == {"app", host}, "plain pip takes the host's markers whatever the target"


def test_no_pip_configuration_file_is_read(index: str, tmp_path: Path) -> None:
    """--isolated skips PIP_* variables and the user's file, not the global ones nor PIP_CONFIG_FILE's."""
    (tmp_path / "constraints.txt").write_text("app<1\n")
    (tmp_path / "pip.conf").write_text(f"[global]\nconstraint = {tmp_path / 'constraints.txt'}\n")
    configured = {"PIP_CONFIG_FILE": str(tmp_path / "pip.conf")}
    assert resolve([sys.executable, "-m", "pip"], index, tmp_path, environment=configured).returncode != 0
    assert resolve(foreign(LINUX), index, tmp_path, environment=configured).returncode == 0
