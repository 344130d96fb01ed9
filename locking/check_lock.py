"""`make check-lock`: each lock installs on every supported platform and Python from the public indexes, and every file
pip would fetch there has its sha256 in the lock. Run before a user tries: `python -m locking.check_lock LOCK...`.

For each lock and target, the lock's own pip runs as that machine would (locking/foreign_pip.py: the target's
environment markers, no pip configuration, PIP_* variables cleared, a cache of its own):
`pip install --dry-run --report --platform ... --python-version ... --only-binary=:all: --require-hashes
--ignore-installed -r LOCK` against PyPI. pip downloads each file and refuses one whose sha256 the lock lacks, and a
dependency the lock does not pin; then the report is compared with the lock entry by entry.

The `+cpu` torch entries come from the PyTorch CPU index. Where that index cannot be reached (this project's
development machines), copies of its files that this machine's pip already knows (its find-links) stand in for it,
and the output says so, and says what the stand-in cannot prove.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import NamedTuple

from locking.lock import TORCH_WHEELS, recorded_wheels
from locking.lockfile import CPU_INDEX_LABEL, Entry, canonical, for_environment, parse
from locking.platforms import Platform, marker_environment, targets, torch_wheel

PYPI = "https://pypi.org/simple"
CPU_INDEX_PAGE = "https://download.pytorch.org/whl/cpu/torch/"
DEFAULT_CACHE = Path.home() / ".cache" / "check-lock"


class Target(NamedTuple):
    platform: Platform
    python: str

    def __str__(self) -> str:
        return f"{self.platform.name}, Python {self.python}"

    def environment(self) -> dict[str, str]:
        return marker_environment(self.platform, self.python)


class Outcome(NamedTuple):
    passed: bool
    lines: list[str]  # what the check did and found, for the reader


def reachable(url: str, timeout: float = 10.0) -> bool:
    """One GET, no retries: where the index cannot be reached, pip would retry it for every file it looks up."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except OSError:
        return False


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def find_links_dirs() -> list[Path]:
    """The local folders this machine's pip configuration (files and PIP_FIND_LINKS) lists as find-links."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    values = re.findall(r"find-links='([^']*)'", listed)
    paths = (Path(word.removeprefix("file://")) for value in values for word in value.split())
    return sorted({path for path in paths if path.is_dir()})


def local_copies(names: set[str], folders: list[Path], recorded: dict[str, str]) -> dict[str, Path]:
    """file name -> this machine's copy of it, when its sha256 is the one recorded for that name."""
    found = {}
    for folder in folders:
        for name in names - set(found):
            if (folder / name).is_file() and sha256(folder / name) == recorded.get(name):
                found[name] = folder / name
    return found


def cpu_index_stand_in(needed: list[Entry], target: Target, copies: dict[str, Path], folder: Path) -> list[str]:
    """Links `folder` to stand-in files of the CPU index for `needed`; returns what that proves and what not."""
    recorded = recorded_wheels(TORCH_WHEELS.read_text())
    notes = []
    for entry in needed:
        name = torch_wheel(target.platform, entry.version.split("+")[0], target.python)
        if name in copies:
            (folder / name).symlink_to(copies[name])
            notes.append(f"PyTorch CPU index unreachable: stood in by this machine's copy of {name}, whose sha256 "
                         "is the lock's (checked here, byte by byte)")
        elif copies:
            other = sorted(copies)[0]
            (folder / name).symlink_to(copies[other])
            digest = recorded.get(name, "none recorded")
            notes.append(f"PyTorch CPU index unreachable and no copy of {name} here: stood in by {other} under its "
                         f"name. Checked: every other file against PyPI, and torch's dependencies as {other} "
                         f"declares them. NOT checked: that the index's {name} has the lock's {digest} (recorded in "
                         f"{TORCH_WHEELS.relative_to(TORCH_WHEELS.parent.parent)}); a machine that reaches the index "
                         "checks that (the GitHub workflow runs this check)")
        else:
            notes.append(f"PyTorch CPU index unreachable and no copy of any of its files here: {name} cannot be had")
    return notes


def pip_command(lock: Path, target: Target, cache: Path, report: Path, index: str, find_links: str | None) -> list[str]:
    platforms = [option for tag in target.platform.pip_platforms for option in ("--platform", tag)]
    return [sys.executable, "-m", "locking.foreign_pip", json.dumps(target.environment()), "install", "--isolated",
            "--dry-run", "--ignore-installed", "--only-binary=:all:", *platforms, "--python-version", target.python,
            "--implementation", "cp", "--require-hashes", "--no-input", "--progress-bar", "off", "--quiet",
            "--disable-pip-version-check", "--cache-dir", str(cache), "--index-url", index,
            *(["--find-links", find_links] if find_links else []), "--report", str(report), "-r", str(lock)]


def file_digest(item: dict) -> str | None:
    """The sha256 pip knew for a file it would fetch: the index's, or the local file's own."""
    info = item["download_info"]
    if digest := info.get("archive_info", {}).get("hashes", {}).get("sha256"):
        return f"sha256:{digest}"
    url = info["url"]
    return sha256(Path(urllib.request.url2pathname(url.removeprefix("file://")))) if url.startswith("file:") else None


def compare(report: dict, locked: list[Entry], target: Target) -> tuple[list[str], int]:
    """What in pip's report the lock does not account for, and how many files pip would fetch."""
    problems = []
    environment = target.environment()
    if {key: report["environment"].get(key) for key in environment} != environment:
        problems.append(f"pip resolved for {report['environment']}, not the target: locking/foreign_pip.py no longer "
                        "takes hold on this pip")
    chosen = for_environment(locked, environment)
    for item in report["install"]:
        name, version = canonical(item["metadata"]["name"]), item["metadata"]["version"]
        file = item["download_info"]["url"].rsplit("/", 1)[-1]
        entry = chosen.get(name)
        if entry is None:
            problems.append(f"{name} {version} ({file}): not in the lock for this platform")
        elif entry.version != version:
            problems.append(f"{name}: pip took {version}, the lock pins {entry.version}")
        elif (digest := file_digest(item)) not in entry.hashes:
            problems.append(f"{file}: its sha256 ({digest}) is not in the lock")
    return problems, len(report["install"])


def pip_errors(output: str) -> list[str]:
    """pip's own account of a failure: everything from its first ERROR line."""
    lines = output.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("ERROR")), max(len(lines) - 20, 0))
    return lines[first:]


def check(lock: Path, target: Target, cache: Path, cpu_index: str | None, copies: dict[str, Path],
          index: str = PYPI) -> Outcome:
    locked = parse(lock.read_text())
    needed = [entry for entry in for_environment(locked, target.environment()).values()
              if entry.version.endswith(CPU_INDEX_LABEL)]
    with tempfile.TemporaryDirectory() as tmp:
        stand_in, report = Path(tmp) / "cpu-index", Path(tmp) / "report.json"
        stand_in.mkdir()
        find_links, notes = None, []
        if needed and cpu_index:
            find_links, notes = cpu_index, [f"torch from the PyTorch CPU index itself ({cpu_index})"]
        elif needed:
            find_links, notes = str(stand_in), cpu_index_stand_in(needed, target, copies, stand_in)
        environment = {name: value for name, value in os.environ.items() if not name.startswith("PIP_")}
        run = subprocess.run(pip_command(lock, target, cache, report, index, find_links), capture_output=True,
                             text=True, env=environment)
        if run.returncode != 0:
            return Outcome(False, [*notes, *pip_errors(run.stdout + run.stderr)])
        problems, files = compare(json.loads(report.read_text()), locked, target)
    if problems:
        return Outcome(False, [*notes, *problems])
    return Outcome(True, [f"{files} files, every one's sha256 in the lock", *notes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("locks", nargs="+", type=Path)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"pip's cache (default {DEFAULT_CACHE})")
    parser.add_argument("--cpu-index", default=CPU_INDEX_PAGE, help="the PyTorch CPU index's torch page")
    args = parser.parse_args(argv)
    cpu_index = args.cpu_index if reachable(args.cpu_index) else None
    recorded = recorded_wheels(TORCH_WHEELS.read_text())
    cpu_files = {name for name in recorded if f"{CPU_INDEX_LABEL}-" in name}
    copies = {} if cpu_index else local_copies(cpu_files, find_links_dirs(), recorded)
    failed = 0
    for lock in args.locks:
        for platform, python in targets():
            outcome = check(lock, Target(platform, python), args.cache_dir, cpu_index, copies)
            failed += not outcome.passed
            print(f"{'PASS' if outcome.passed else 'FAIL'}  {lock.name}, {platform.name}, Python {python}", flush=True)
            for line in outcome.lines:
                print(f"      {line}", flush=True)
    print(f"{failed} of {len(args.locks) * len(targets())} failed" if failed else "every lock passed on every target")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
