"""Reading requirement files as pip reads them: the entries of a lock, their markers, versions and hashes.

A lock entry is `name==version[ ; marker]` followed by `--hash` options. One lock serves every supported platform
and Python version, so a name may have several entries whose markers never hold together (torch: the PyTorch CPU
index's `+cpu` build on Linux, PyPI's wheel on macOS); `for_environment` picks the one that holds on a platform.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from typing import NamedTuple

HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")
# The local version label of the PyTorch CPU index's builds: no other index serves a `+cpu` version.
CPU_INDEX_LABEL = "+cpu"


class Entry(NamedTuple):
    name: str  # canonical (PEP 503)
    spelled: str  # as the file writes it
    version: str  # empty when the entry pins none
    marker: str  # empty when the entry applies everywhere
    hashes: frozenset[str]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def entries(text: str) -> list[str]:
    """Requirement lines as pip reads them: continuations joined, comments and blank lines dropped."""
    lines = [re.sub(r"(^|\s)#.*", "", line).split() for line in re.sub(r"\\\n", " ", text).splitlines()]
    return [" ".join(words) for words in lines if words]


def spelled_name(entry: str) -> str:
    """The project name as the entry writes it (no extras, specifier, marker or options)."""
    return re.split(r"[\[=<>~!;\s]", entry, maxsplit=1)[0]


def requirement_name(entry: str) -> str:
    return canonical(spelled_name(entry))


def parse_entry(entry: str) -> Entry:
    requirement = re.sub(r"\s*--hash=\S+", "", entry)
    specifier, _, marker = requirement.partition(";")
    version = specifier.split("==", 1)[1].strip() if "==" in specifier else ""
    return Entry(requirement_name(entry), spelled_name(entry), version, marker.strip(),
                 frozenset(HASH.findall(entry)))


def parse(text: str) -> list[Entry]:
    return [parse_entry(entry) for entry in entries(text)]


def applies(entry: Entry, environment: Mapping[str, str]) -> bool:
    """Whether pip on a machine with these PEP 508 values installs this entry."""
    # Imported here: `make setup` runs this module's command line in a venv that holds nothing but pip yet.
    from packaging.markers import Marker

    return not entry.marker or Marker(entry.marker).evaluate({**environment, "extra": ""})


def for_environment(locked: Iterable[Entry], environment: Mapping[str, str]) -> dict[str, Entry]:
    """name -> the one entry that holds in `environment`; two that hold at once are a broken lock."""
    chosen: dict[str, Entry] = {}
    for entry in locked:
        if applies(entry, environment):
            if entry.name in chosen:
                raise ValueError(f"{entry.name} is locked twice for {dict(environment)}")
            chosen[entry.name] = entry
    return chosen


def unmarked(text: str) -> list[Entry]:
    """The entries of a file for one platform (requirements-dev.txt, the hand-picked subsets): no markers there."""
    found = parse(text)
    if marked := [entry.name for entry in found if entry.marker]:
        raise ValueError(f"entries with markers need an environment to read: {marked}")
    return found


def pins(text: str) -> dict[str, str]:
    """name -> version of the `name==version` entries (extras dropped); unpinned names are not pins."""
    return {entry.name: entry.version for entry in unmarked(text) if entry.version}


def hashes(text: str) -> dict[str, frozenset[str]]:
    """name -> the `--hash` values of its entry (empty when it has none)."""
    return {entry.name: entry.hashes for entry in unmarked(text)}


def cpu_index_entries(text: str) -> list[Entry]:
    """The entries pip must take from the PyTorch CPU index: their version carries its `+cpu` label."""
    return [entry for entry in parse(text) if entry.version.endswith(CPU_INDEX_LABEL)]


def requirement_line(entry: Entry) -> str:
    """One entry in the lock's layout: the pin and its marker, then one `--hash` per line."""
    pin = f"{entry.spelled}=={entry.version}" + (f" ; {entry.marker}" if entry.marker else "")
    return " \\\n    ".join([pin, *(f"--hash={digest}" for digest in sorted(entry.hashes))])


def main(argv: list[str]) -> int:
    """`python -m locking.lockfile cpu-index LOCK`: those entries, markers kept (pip skips those of other platforms)."""
    if len(argv) != 2 or argv[0] != "cpu-index":
        print("usage: python -m locking.lockfile cpu-index LOCK", file=sys.stderr)
        return 2
    with open(argv[1]) as lock:
        print("\n".join(requirement_line(entry) for entry in cpu_index_entries(lock.read())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
