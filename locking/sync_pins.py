"""Give the hand-picked pinned files the lock's versions and hashes: `python -m locking.sync_pins` (run by `make lock`).

requirements-dev.lock is the one source of versions and hashes. The serving image, the Lambda package and the
SageMaker job each install a chosen subset of it (what their platform does not already bring); which names a file
lists is decided by hand, their `==` versions and `--hash` options are copied from the lock entry that holds where
that file is installed: Linux x86_64 and the Python of its runtime. Because every line carries hashes, pip installs
those files in hash-checking mode (`--require-hashes` is implied) and refuses any file, direct or transitive, that
the lock did not record.
"""

from __future__ import annotations

import re
from pathlib import Path

from locking.lockfile import Entry, entries, for_environment, parse, requirement_line, requirement_name, spelled_name
from locking.platforms import PLATFORMS, PYTHONS, marker_environment

REPO_ROOT = Path(__file__).resolve().parent.parent  # not devkit.repo: locking/ runs before .venv exists
LOCK = REPO_ROOT / "requirements-dev.lock"
LINUX = next(target for target in PLATFORMS if target.markers["sys_platform"] == "linux")
# Each file and the Pythons it is installed with, all on Linux x86_64: the serving image's base (its Dockerfile),
# the Lambda runtime (Chalice deploys with the Python that runs it, so any supported one) and the SageMaker
# training image (training_jobs/launch.py). tests/unit/locking/test_sync_pins.py holds these to their sources.
RUNTIME_PYTHONS = {"model/serving/requirements-serve.txt": ("3.11",),
                   "chalice_app/requirements.txt": PYTHONS,
                   "training_jobs/requirements-sagemaker.txt": ("3.12",)}
SUBSET_FILES = tuple(RUNTIME_PYTHONS)


def locked_for(relative: str, lock_text: str) -> dict[str, Entry]:
    """name -> the lock's entry for the file's runtime; a name locked differently for two of its Pythons fails."""
    locked = parse(lock_text)
    chosen = [for_environment(locked, marker_environment(LINUX, python)) for python in RUNTIME_PYTHONS[relative]]
    split = {name for choice in chosen[1:] for name, entry in choice.items() if chosen[0].get(name) != entry}
    return {name: entry for name, entry in chosen[0].items() if name not in split}


def synced(text: str, locked: dict[str, Entry]) -> str:
    """`text` with every entry replaced by the lock's version and hashes of that name; comments kept."""
    out: list[str] = []
    for block in re.split(r"(?<!\\)\n", text.rstrip("\n")):
        if not entries(block) or block.lstrip().startswith("#"):
            out.append(block)
            continue
        name = requirement_name(block.strip())
        if name not in locked:
            raise SystemExit(f"{name} is not in {LOCK.name} (once, for every Python this file is installed with): "
                             "add it to requirements-dev.txt and run `make lock`")
        entry = locked[name]
        out.append(requirement_line(entry._replace(spelled=spelled_name(block.strip()), marker="")))
    return "\n".join(out) + "\n"


def main() -> None:
    lock_text = LOCK.read_text()
    for relative in SUBSET_FILES:
        path = REPO_ROOT / relative
        path.write_text(synced(path.read_text(), locked_for(relative, lock_text)))


if __name__ == "__main__":
    main()
