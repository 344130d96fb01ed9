"""A requirements file's pins, as the tests of the lock and of the serving image read them."""

from __future__ import annotations

from pathlib import Path

from tools import lockfile


def pins(path: Path) -> dict[str, str]:
    """`name==version` entries (extras dropped); unpinned names and comments are not pins."""
    return lockfile.pins(path.read_text())
