"""The platforms and Python versions the lock supports, one table for `make setup`, `make lock` and `make check-lock`.

A platform is what pip needs to pick its files for it (wheel platform tags) and what environment markers see there
(PEP 508). `python -m locking.platforms` is `make setup`'s first step: it runs on whatever Python the user has, before
any venv exists, and says plainly when that interpreter or machine is not one the lock covers. It keeps to what
Python 3.7 parses, so that an older interpreter too prints the message rather than a SyntaxError.
"""

from __future__ import annotations

import platform
import sys
from typing import NamedTuple

PYTHONS = ("3.11", "3.12")
DOCS = "docs/setup.md"


class Platform(NamedTuple):
    name: str
    markers: dict[str, str]  # the PEP 508 marker values of this platform (the Python's are added per version)
    pip_platforms: tuple[str, ...]  # pip --platform values: the wheel tags this platform's oldest supported OS takes
    torch_wheel: str  # the torch file it installs, {version} and {python} (cp311) to fill in


# glibc 2.28 (torch's manylinux_2_28 floor) runs every older manylinux wheel too; pip expands no manylinux_2_x tag
# itself, so the list is spelled out, legacy aliases included.
MANYLINUX_2_28_X86_64 = (*(f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)),
                         "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")

PLATFORMS = (
    Platform("Linux x86_64", {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                              "os_name": "posix"}, MANYLINUX_2_28_X86_64,
             # the PyTorch CPU index's build: PyPI's Linux wheel is the CUDA one (526 MB + several GB of CUDA)
             "torch-{version}+cpu-{python}-{python}-manylinux_2_28_x86_64.whl"),
    # macOS 14 is torch's floor (its only arm64 wheel is macosx_14_0); pip expands it to every older macOS tag.
    Platform("macOS arm64", {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
                             "os_name": "posix"}, ("macosx_14_0_arm64",),
             "torch-{version}-{python}-{python}-macosx_14_0_arm64.whl"),  # PyPI's, CPU-only: no +cpu build for macOS
)


def marker_environment(target: Platform, python: str) -> dict[str, str]:
    """The PEP 508 values an interpreter `python` (X.Y, its first release) reports on `target`."""
    return {**target.markers, "python_version": python, "python_full_version": python + ".0",
            "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def platform_marker(target: Platform) -> str:
    """The marker of a lock entry for this platform only."""
    return (f"sys_platform == '{target.markers['sys_platform']}' and "
            f"platform_machine == '{target.markers['platform_machine']}'")


def torch_wheel(target: Platform, version: str, python: str) -> str:
    return target.torch_wheel.format(version=version, python="cp" + python.replace(".", ""))


def targets() -> list[tuple[Platform, str]]:
    """Every supported pair of platform and Python version."""
    return [(target, python) for target in PLATFORMS for python in PYTHONS]


def problems(python: str, system: str, machine: str) -> list[str]:
    """Why this interpreter (X.Y) on this system (platform.system(), platform.machine()) is not supported."""
    found = []
    if python not in PYTHONS:
        found.append(f"Python {python} is not supported (the lock covers Python {' and '.join(PYTHONS)}): "
                     f"name one with PYTHON=, e.g. `make setup PYTHON=python{PYTHONS[-1]}`")
    if not any(target.markers["platform_system"] == system and target.markers["platform_machine"] == machine
               for target in PLATFORMS):
        found.append(f"{system} {machine} is not a platform the lock covers ({', '.join(p.name for p in PLATFORMS)}); "
                     f"{DOCS} says what to do instead")
    return found


def main() -> int:
    python = "{}.{}".format(*sys.version_info[:2])
    found = problems(python, platform.system(), platform.machine())
    for problem in found:
        print(f"make setup: {sys.executable}: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
