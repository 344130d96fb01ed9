"""The repository's locks and a requirements file's pins, as the tests of the locks and the serving image read them."""

from __future__ import annotations

from pathlib import Path

from locking import lockfile
from tests.support import REPO_ROOT

# Every lock of the repository, each resolved from the .txt of its name: tests/unit/locking/test_lock.py holds the
# Makefile's LOCKS (what `make lock` and `make check-lock` take) to this list.
LOCKS = sorted(REPO_ROOT.glob("requirements-*.lock"))


def pins(path: Path) -> dict[str, str]:
    """`name==version` entries (extras dropped); unpinned names and comments are not pins."""
    return lockfile.pins(path.read_text())
