"""The documentation: a strict MkDocs build, repository paths the pages name exist, the README stays a front page.

MkDocs checks links between pages; files outside docs/ cannot be linked, so pages name them as code spans
(`model/serving/server.py`, `python -m model.tools.bench`), and this module checks that those still exist.
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

PAGES = (REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")))
# MkDocs has a venv of its own (requirements-docs.lock; the Makefile's DOCS_VENV), away from the API's .venv.
DOCS_PYTHON = REPO_ROOT / ".venv-docs" / "bin" / "python"
README_MAX_LINES = 160
# First segments of repository paths; the Chalice project's own folders are named relative to chalice_app/.
PATH_ROOTS = {"model", "training_jobs", "chalice_app", "loadtest", "tests", "locking", "docs", ".github", ".ci",
              "chalicelib", ".chalice", "infra", "ops", "local", "reports"}
# Bare file names with these suffixes name repository files; bare .json/.md names are mostly generated outputs.
BARE_SUFFIXES = (".py", ".yaml", ".yml", ".toml", ".txt")
PROJECT_PACKAGES = {"model", "training_jobs", "chalice_app", "loadtest", "locking", "tests"}
NOT_A_PATH = re.compile(r"[\s<>{}*=:$,()|\"']|^[-/~.]{2}|^/|^artifacts/")
SKIPPED_DIRS = {".git", ".venv", ".venv-docs", "artifacts", "site", "__pycache__", ".pytest_cache", ".ruff_cache",
                ".hypothesis"}


def without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", without_fences(text))


def looks_like_path(span: str) -> bool:
    if NOT_A_PATH.search(span):
        return False
    if "/" in span:
        return span.split("/", 1)[0] in PATH_ROOTS
    return span.endswith(BARE_SUFFIXES)


@cache
def repository_paths() -> frozenset[str]:
    """Every file and folder of the working tree, relative to its root (virtualenv, outputs and caches left out)."""
    found: set[str] = set()
    for folder, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        relative = Path(folder).relative_to(REPO_ROOT).as_posix()
        prefix = "" if relative == "." else relative + "/"
        found.update(prefix + name for name in (*dirs, *files))
    return frozenset(found)


def exists(path: str) -> bool:
    """The path from the root, or as the tail of one (`chalicelib/config.py`, a bare `thresholds.toml`)."""
    path = path.rstrip("/")
    return path in repository_paths() or any(p.endswith("/" + path) for p in repository_paths())


def module_exists(module: str) -> bool:
    base = module.replace(".", "/")
    return f"{base}.py" in repository_paths() or f"{base}/__init__.py" in repository_paths()


def named_modules(text: str) -> set[str]:
    """Project modules run as `python -m X`, in code spans and code blocks alike."""
    return {m for m in re.findall(r"python -m ([\w.]+)", text) if m.split(".")[0] in PROJECT_PACKAGES}


def test_docs_build_strictly(tmp_path: Path) -> None:
    assert DOCS_PYTHON.is_file(), f"{DOCS_PYTHON} is missing: `make docs` or `make test` installs it"
    build = subprocess.run(
        [str(DOCS_PYTHON), "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    assert "WARNING" not in build.stderr, build.stderr


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO_ROOT).as_posix())
def test_named_paths_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = sorted({span for span in code_spans(text) if looks_like_path(span) and not exists(span)})
    missing += sorted(f"python -m {m}" for m in named_modules(text) if not module_exists(m))
    assert not missing, f"{page.name} names what the repository does not have: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO_ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    """MkDocs checks the links between pages; the README is outside docs/, so its links are checked here."""
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", without_fences(page.read_text(encoding="utf-8")))
    broken = [t for t in targets if "://" not in t and not (page.parent / t).exists()]
    assert not broken, f"{page.name} links to what does not exist: {broken}"


def test_readme_is_a_front_page() -> None:
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move the detail into docs/"


def test_readme_maps_every_make_target_to_a_page() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    targets = re.findall(r"^([a-z-]+):.*## ", makefile, flags=re.M)
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert not [t for t in targets if t != "help" and f"`{t}`" not in readme]
