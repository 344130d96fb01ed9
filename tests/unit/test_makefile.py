"""The Makefile as the front door: `make help` fits a terminal; its sections are the target table of the README and
of the docs' index page, in order; each variable sits in the section that introduces it and is defined before any
line reads it (a `?=` below its first use reads as if the Makefile had no default, and a name never defined is a
typo that expands to nothing)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

MAKEFILE = REPO_ROOT / "Makefile"
HELP_WIDTH = 100  # the terminal columns every line of `make help` fits in
FRONT_PAGES = (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "index.md")
MAKE_OWN = {"MAKE", "MAKEFILE_LIST", "MAKEFLAGS", "CURDIR"}  # variables make itself defines
SECTION = re.compile(r"^##@ (.+): (docs/[\w-]+\.md)$")
TARGET = re.compile(r"^([a-z-]+):.*## ")
DEFINITION = re.compile(r"^([A-Z_][A-Z0-9_]*)\s*(?:\?|::|:|\+)?=")
USE = re.compile(r"(?<!\$)\$\((?:call )?([A-Z_][A-Z0-9_]*)[),: ]")  # $(NAME), $(NAME:a=b), $(call NAME,...)

Section = tuple[str, str, list[str]]  # title, page, targets


def makefile_lines() -> list[str]:
    """The lines of the Makefile, its comments blanked (they may quote `$(NAME)`); sections are kept."""
    return [line if SECTION.match(line) or not line.startswith("#") else "" for line in
            MAKEFILE.read_text(encoding="utf-8").splitlines()]


def sections() -> list[Section]:
    """Each `##@ title: page` section with its documented targets; what comes before the first is titled ""."""
    found: list[Section] = [("", "", [])]
    for line in makefile_lines():
        if match := SECTION.match(line):
            found.append((match[1], match[2], []))
        elif match := TARGET.match(line):
            found[-1][2].append(match[1])
    return found


def section_of_each_line() -> list[int]:
    """The index in sections() of the section each line belongs to (0: before the first section)."""
    index, indices = 0, []
    for line in makefile_lines():
        index += bool(SECTION.match(line))
        indices.append(index)
    return indices


def target_table(page: Path) -> list[Section]:
    """The rows of a front page's target table: (linked page's title, its path from the root, targets)."""
    rows = re.findall(r"^\| (`[^|]+`) \| \[([^\]]+)\]\(([^)]+)\) \|$", page.read_text(encoding="utf-8"), flags=re.M)
    return [(title, (page.parent / link).resolve().relative_to(REPO_ROOT).as_posix(), re.findall(r"`([^`]+)`", cell))
            for cell, title, link in rows]


def definitions() -> dict[str, int]:
    """Each variable's first defining line (0-based)."""
    found: dict[str, int] = {}
    for number, line in enumerate(makefile_lines()):
        if match := DEFINITION.match(line):
            found.setdefault(match[1], number)
    return found


@pytest.mark.parametrize("page", FRONT_PAGES, ids=lambda page: page.relative_to(REPO_ROOT).as_posix())
def test_the_sections_are_the_front_pages_target_table_in_order(page: Path) -> None:
    preamble, *rest = sections()
    assert preamble == ("", "", ["help"])
    assert rest == target_table(page)


def test_make_help_lists_every_target_in_lines_a_terminal_shows_whole() -> None:
    listed = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO_ROOT, capture_output=True, text=True,
                            check=True, timeout=60).stdout.splitlines()
    assert [line for line in listed if len(line) > HELP_WIDTH] == []
    assert re.findall(r"^  make (\S+)", "\n".join(listed), flags=re.M) == [t for s in sections() for t in s[2]]


def test_no_variable_is_read_before_its_definition() -> None:
    defined = definitions()
    early = [f"{name} on line {number + 1}" for number, line in enumerate(makefile_lines())
             for name in USE.findall(line) if name not in MAKE_OWN and defined.get(name, number) >= number]
    assert early == []


def test_each_variable_is_read_in_the_section_that_defines_it() -> None:
    """The block before the first section holds what every section reads; the others keep their own variables."""
    lines, section = makefile_lines(), section_of_each_line()
    read_in: dict[str, set[int]] = {}
    for number, line in enumerate(lines):
        for name in USE.findall(line):
            read_in.setdefault(name, set()).add(section[number])
    misplaced = [name for name, number in definitions().items()
                 if section[number] and section[number] not in read_in.get(name, set())]
    assert misplaced == []
