"""`make check-lock`: offline on tiny wheels, what passes and what fails; then the real locks against PyPI (slow)."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from locking import check_lock
from locking.lockfile import parse
from locking.platforms import PLATFORMS, Platform
from tests.support.pins import LOCKS
from tests.support.wheels import make_wheel, sha256, simple_index

LINUX, MACOS = PLATFORMS
TORCH = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


class Wheels(NamedTuple):
    files: dict[str, Path]  # project name -> its one wheel
    index: str  # a PyPI stand-in listing app and only-mac (torch is the CPU index's only)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    folder = tmp_path_factory.mktemp("wheels")
    requires = ['only-mac ; sys_platform == "darwin"', 'torch ; sys_platform == "linux"']
    pypi = [make_wheel(folder, "app", "1.0", requires), make_wheel(folder, "only-mac", "1.0")]
    torch = make_wheel(folder, "torch", "2.13.0+cpu").rename(folder / TORCH)
    return Wheels({"app": pypi[0], "only-mac": pypi[1], "torch": torch}, simple_index(folder / "simple", pypi))


def lock_text(wheels: Wheels, *, leave_out: str = "", wrong: str = "") -> str:
    lines = {"app": "app==1.0", "only-mac": "only-mac==1.0 ; sys_platform == 'darwin'",
             "torch": "torch==2.13.0+cpu ; sys_platform == 'linux' and platform_machine == 'x86_64'"}
    digests = {name: "sha256:" + "0" * 64 if name == wrong else sha256(wheel) for name, wheel in wheels.files.items()}
    return "".join(f"{line} --hash={digests[name]}\n" for name, line in lines.items() if name != leave_out)


def run(tmp_path: Path, wheels: Wheels, text: str, target: check_lock.Target) -> check_lock.Outcome:
    (tmp_path / "x.lock").write_text(text)
    return check_lock.check(tmp_path / "x.lock", target, tmp_path / "cache", None, {TORCH: wheels.files["torch"]},
                            index=wheels.index)


def test_a_complete_lock_passes_on_each_platform_with_the_cpu_index_stood_in(tmp_path: Path, wheels: Wheels) -> None:
    linux = run(tmp_path, wheels, lock_text(wheels), check_lock.Target(LINUX, "3.11"))
    assert linux.passed, linux.lines
    assert linux.lines[0] == "2 files, every one's sha256 in the lock"
    assert "stood in by this machine's copy of " + TORCH in linux.lines[1]
    mac = run(tmp_path, wheels, lock_text(wheels), check_lock.Target(MACOS, "3.12"))
    assert mac.passed and mac.lines == ["2 files, every one's sha256 in the lock"]


def test_a_python_without_its_own_copy_says_what_the_stand_in_cannot_prove(tmp_path: Path, wheels: Wheels) -> None:
    outcome = run(tmp_path, wheels, lock_text(wheels), check_lock.Target(LINUX, "3.12"))
    assert outcome.passed
    assert "no copy of torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl here" in outcome.lines[1]
    assert "NOT checked: that the index's torch-2.13.0+cpu-cp312" in outcome.lines[1]


def test_a_reachable_cpu_index_serves_torch_itself(tmp_path: Path, wheels: Wheels) -> None:
    (tmp_path / "x.lock").write_text(lock_text(wheels))
    index_page = wheels.files["torch"].parent.as_uri()  # pip reads a find-links page or folder alike
    outcome = check_lock.check(tmp_path / "x.lock", check_lock.Target(LINUX, "3.11"), tmp_path / "cache", index_page,
                               {}, index=wheels.index)
    assert outcome.passed and outcome.lines[1] == f"torch from the PyTorch CPU index itself ({index_page})"


@pytest.mark.parametrize(("change", "target", "said"), [
    ({"leave_out": "only-mac"}, MACOS, "In --require-hashes mode, all requirements must have their versions pinned"),
    ({"wrong": "app"}, LINUX, "THESE PACKAGES DO NOT MATCH THE HASHES"),
    ({"leave_out": "torch"}, LINUX, "No matching distribution found for torch"),
])
def test_a_file_without_its_hash_or_a_requirement_missing_from_the_lock_fails(
        tmp_path: Path, wheels: Wheels, change: dict[str, str], target: Platform, said: str) -> None:
    outcome = run(tmp_path, wheels, lock_text(wheels, **change), check_lock.Target(target, "3.11"))
    assert not outcome.passed and said in "\n".join(outcome.lines)


def report_item(name: str, version: str, digest: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "version": version},
            "download_info": {"url": f"https://files.example/{name}-{version}-py3-none-any.whl",
                              "archive_info": {"hashes": {"sha256": digest}}}}


def test_the_report_is_held_against_the_lock_entry_by_entry(wheels: Wheels) -> None:
    """pip's own checks come first; this is what remains if a pip or a patch ever lets one through."""
    target = check_lock.Target(LINUX, "3.11")
    locked = parse(lock_text(wheels))
    app = sha256(wheels.files["app"]).removeprefix("sha256:")
    report = {"environment": target.environment(), "install": [report_item("app", "1.0", app)]}
    assert check_lock.compare(report, locked, target) == ([], 1)
    report["install"] += [report_item("app", "2.0", app), report_item("only-mac", "1.0", "0" * 64),
                          report_item("app", "1.0", "f" * 64)]
    problems, _ = check_lock.compare(report, locked, target)
    assert problems == ["app: pip took 2.0, the lock pins 1.0", "only-mac 1.0 (only-mac-1.0-py3-none-any.whl): not in "
                        "the lock for this platform", f"app-1.0-py3-none-any.whl: its sha256 (sha256:{'f' * 64}) is "
                        "not in the lock"]
    report["environment"] = {**target.environment(), "sys_platform": "darwin"}
    assert "no longer takes hold" in check_lock.compare(report, locked, target)[0][0]


def test_an_index_that_does_not_answer_is_told_apart_at_once(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<a href='torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl'></a>")
    assert check_lock.reachable((tmp_path / "index.html").as_uri())
    assert not check_lock.reachable("http://127.0.0.1:9/whl/cpu/torch/", timeout=2)


@pytest.mark.slow
def test_every_lock_installs_on_every_supported_platform_and_python(capsys: pytest.CaptureFixture) -> None:
    """The real check (`make check-lock`): downloads every file of every target into its cache (minutes, once)."""
    try:
        urllib.request.urlopen(check_lock.PYPI + "/pip/", timeout=10).close()
    except OSError as error:
        pytest.skip(f"PyPI cannot be reached ({error}): the check resolves against it")
    passed = check_lock.main([str(locked) for locked in LOCKS]) == 0
    assert passed, capsys.readouterr().out

