"""`make lock`: resolve each `X.txt` into its hash-locked `X.lock`, one file for every supported platform and Python.

uv resolves universally (`uv pip compile --universal`): one graph for every platform, entries that hold on some
platforms only carry environment markers, and every file of each version has its sha256. It reads PyPI only (no
configuration of this machine), where Linux torch is the CUDA build; so this module then rewrites torch's entry as
one entry per supported platform, with the files recorded in locking/torch-wheels.sha256: on Linux x86_64 the PyTorch
CPU index's `+cpu` build, on macOS arm64 PyPI's wheel (which must be among the digests PyPI gave the resolver). The
packages only the CUDA build needs (nvidia-*, cuda-*, triton) go: the `+cpu` build requires none of them, and the
check (`make check-lock`) installs its real wheel's dependencies from the lock to prove it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from locking.lockfile import Entry, canonical, parse_entry, requirement_line
from locking.platforms import PLATFORMS, PYTHONS, platform_marker, torch_wheel

REPO_ROOT = Path(__file__).resolve().parent.parent  # not devkit.repo: locking/ runs before .venv exists
TORCH_WHEELS = REPO_ROOT / "locking" / "torch-wheels.sha256"
PYPI = "https://pypi.org/simple"
# The versions a lock must hold besides its own requirements (paths beside the lock): .venv runs the serving code, so
# the development lock keeps the serving image's pins; the docs tools' venv shares nothing with serving.
CONSTRAINTS = {"requirements-dev.lock": ("model/serving/requirements-serve.txt",)}
GPU_ONLY = re.compile(r"nvidia-.+|cuda-.+|triton")


class LockError(Exception):
    """The resolution cannot become a lock for every supported platform; the message says what to change."""


def recorded_wheels(text: str) -> dict[str, str]:
    """file name -> sha256 digest, from sha256sum's layout (comment lines skipped)."""
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return {name: f"sha256:{digest}" for digest, name in rows}


def blocks(text: str) -> list[str]:
    """The resolver's output cut into entries, each with the `# via` lines under it."""
    found: list[str] = []
    for line in text.rstrip("\n").splitlines():
        if found and (line[:1].isspace() or not line):
            found[-1] += "\n" + line
        else:
            found.append(line)
    return found


def block_entry(block: str) -> Entry:
    return parse_entry(re.sub(r"\\\n", " ", block.split("\n    #", 1)[0]))


def required_by(block: str) -> set[str]:
    """The names a `# via` annotation lists (`-r file` sources included, as written)."""
    comments = [line.strip().lstrip("#").strip() for line in block.splitlines() if line.strip().startswith("#")]
    names = " ".join(comments).split("via", 1)[-1].split() if comments else []
    return {canonical(name) if not name.startswith("-") else name for name in names}


def torch_entries(resolved: Entry, recorded: dict[str, str]) -> list[Entry]:
    """One torch entry per supported platform, each with its recorded files for every supported Python."""
    out = []
    for target in PLATFORMS:
        names = [torch_wheel(target, resolved.version, python) for python in PYTHONS]
        if missing := [name for name in names if name not in recorded]:
            raise LockError(f"{TORCH_WHEELS.name} has no digest for {', '.join(missing)}: add it (docs/setup.md)")
        digests = frozenset(recorded[name] for name in names)
        version = names[0].split("-")[1]
        if "+" not in version and not digests <= resolved.hashes:
            raise LockError(f"PyPI does not list {TORCH_WHEELS.name}'s digests of {', '.join(names)}")
        out.append(Entry(resolved.name, resolved.spelled, version, platform_marker(target), digests))
    return out


def finished(resolved_text: str, recorded: dict[str, str]) -> str:
    """The resolver's output with torch per platform and the CUDA-only packages gone (unchanged without torch)."""
    entries = [(block, block_entry(block)) for block in blocks(resolved_text)]
    torch = [(block, entry) for block, entry in entries if entry.name == "torch"]
    if not torch:
        return resolved_text
    ((torch_block, resolved),) = torch
    gpu_only = {entry.name for _, entry in entries if GPU_ONLY.fullmatch(entry.name)}
    for block, entry in entries:
        others = {name for name in required_by(block) if not GPU_ONLY.fullmatch(name)} - {"torch"}
        if entry.name in gpu_only and others:
            raise LockError(f"{entry.name} is required by {sorted(others)}, not only by torch's CUDA build")
    via = torch_block[torch_block.index("\n    #"):] if "\n    #" in torch_block else ""
    out = []
    for block, entry in entries:
        if entry.name == "torch":
            out += [requirement_line(replacement) + via for replacement in torch_entries(resolved, recorded)]
        elif entry.name not in gpu_only:
            out.append(block)
    return "\n".join(out) + "\n"


def header(lock: Path) -> str:
    """The lock's leading comment block, kept across resolutions."""
    lines = lock.read_text().splitlines(keepends=True) if lock.exists() else []
    return "".join(lines[:next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))])


def resolve(source: Path, lock: Path, upgrade: bool) -> str:
    """uv's universal resolution of `source` under the lock's CONSTRAINTS, keeping the lock's versions where they still
    fit unless `upgrade`."""
    uv = Path(sys.executable).with_name("uv")
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / lock.name
        if lock.exists() and not upgrade:
            # uv prefers the versions (and reuses the hashes) in its output file; torch's entries are this module's.
            kept = [block for block in blocks(lock.read_text()) if not block.startswith("#")]
            output.write_text("\n".join(block for block in kept if block_entry(block).name != "torch") + "\n")
        # Run beside the source, so that the `# via -r X.txt` annotations name it as the repository does.
        command = [str(uv), "pip", "compile", "--universal", "--python-version", PYTHONS[0], "--generate-hashes",
                   "--no-header", "--no-config", "--default-index", PYPI, "--quiet", "--output-file", str(output),
                   *(f"--constraints={os.path.relpath(lock.parent / path, source.parent)}"
                     for path in CONSTRAINTS.get(lock.name, ())),
                   *(["--upgrade"] if upgrade else []), source.name]
        environment = {name: value for name, value in os.environ.items() if not name.startswith(("UV_", "PIP_"))}
        subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL, cwd=source.parent)
        return output.read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("locks", nargs="+", type=Path, help="X.lock files, each resolved from X.txt beside it")
    parser.add_argument("--upgrade", action="store_true", help="the newest allowed versions, not the lock's")
    args = parser.parse_args(argv)
    recorded = recorded_wheels(TORCH_WHEELS.read_text())
    for lock in args.locks:
        try:
            text = header(lock) + finished(resolve(lock.with_suffix(".txt"), lock, args.upgrade),
                                           recorded)
        except subprocess.CalledProcessError:
            print(f"make lock: {lock}: uv found no resolution (its message is above)", file=sys.stderr)
            return 1
        except LockError as error:
            print(f"make lock: {lock}: {error}", file=sys.stderr)
            return 1
        lock.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
