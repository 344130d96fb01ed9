"""training_jobs.config owns the data folder's default and layout; the Makefile asks it for the paths it needs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from training_jobs.config import main

# Variables whose value runs the venv's Python: on a fresh machine the venv exists only once `setup` has run.
ASKS_PYTHON = re.compile(r"\$\((DATA_PATH|TEST_FILE|EXTRA_DATA)\b|\$\(call DATA_PATH")


def makefile_definitions() -> dict[str, tuple[str, str]]:
    """name -> (assignment operator, value with continuation lines joined)."""
    text = (REPO_ROOT / "Makefile").read_text().replace("\\\n", " ")
    found = {}
    for match in re.finditer(r"^([A-Z_]+)\s*(::=|:=|\?=|=)(.*)$", text, flags=re.M):
        found[match.group(1)] = (match.group(2), match.group(3))
    return found


@pytest.mark.parametrize(("what", "expected"), [("data-dir", ""), ("test-split", "nlp100/test.tsv")])
def test_prints_paths_of_the_given_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str,
                                               expected: str) -> None:
    main([what, "--data", str(tmp_path)])
    assert capsys.readouterr().out.strip() == str(tmp_path / expected).rstrip("/")


def test_extra_data_only_when_the_folder_has_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["extra-data", "--data", str(tmp_path)])
    assert capsys.readouterr().out.strip() == ""
    (tmp_path / "corpus.tsv.gz").write_bytes(b"")
    main(["extra-data", "--data", str(tmp_path)])
    assert capsys.readouterr().out.strip() == str(tmp_path / "corpus.tsv.gz")


def test_makefile_asks_for_data_paths_only_when_a_recipe_runs() -> None:
    """A `:=` variable expands while make reads the Makefile, before `setup` has made the venv: on a fresh machine
    its paths would silently be empty (`make local` training without the extra data)."""
    early = [name for name, (operator, value) in makefile_definitions().items()
             if operator in (":=", "::=") and ASKS_PYTHON.search(value)]
    assert early == []


def test_make_train_passes_the_data_folders_extras(tmp_path: Path) -> None:
    (tmp_path / "corpus.tsv.gz").write_bytes(b"")
    dry_run = subprocess.run(["make", "-n", "train", f"DATA={tmp_path}", "MODEL_DIR=unused"], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=True, timeout=60)
    assert f"--extra-data {tmp_path / 'corpus.tsv.gz'}" in dry_run.stdout
