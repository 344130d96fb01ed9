"""training_jobs.config owns the data's default (a folder, else the UCI corpus in the user cache) and the folder's
layout; the Makefile asks it for the paths it needs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from training_jobs import config
from training_jobs.config import cached_corpus, default_data_dir, main, training_channel

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


def test_make_train_passes_the_sample(tmp_path: Path) -> None:
    command = ["make", "-n", "train", f"DATA={tmp_path / 'newsCorpora.csv'}", "SAMPLE=all", "MODEL_DIR=unused"]
    dry_run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60)
    assert "--sample all" in dry_run.stdout


@pytest.fixture
def no_configured_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine without NEWS_DATA_DIR, without the shared folder, with its own home: returns that home."""
    for name in ("NEWS_DATA_DIR", "NEWS_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config, "SHARED_DATA_DIR", tmp_path / "shared" / "data" / "news_aggregator")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_without_data_the_default_is_the_uci_corpus_in_the_user_cache(no_configured_data: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_data_dir() == no_configured_data / ".cache" / "news-classifier" / "newsCorpora.csv"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "news-classifier" / "newsCorpora.csv"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG spec: a relative path is to be ignored
    assert default_data_dir() == no_configured_data / ".cache" / "news-classifier" / "newsCorpora.csv"
    monkeypatch.setenv("NEWS_CACHE_DIR", str(tmp_path / "mine"))
    assert default_data_dir() == cached_corpus() == tmp_path / "mine" / "newsCorpora.csv"


def test_configured_data_comes_before_the_cache(no_configured_data: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config.SHARED_DATA_DIR.mkdir(parents=True)
    assert default_data_dir() == config.SHARED_DATA_DIR
    monkeypatch.setenv("NEWS_DATA_DIR", str(tmp_path / "newsCorpora.csv"))
    assert default_data_dir() == tmp_path / "newsCorpora.csv"


def test_a_training_job_gets_the_split_folder_or_the_file(tmp_path: Path) -> None:
    assert training_channel(tmp_path) == tmp_path / "nlp100"
    assert training_channel(tmp_path / "newsCorpora.csv") == tmp_path / "newsCorpora.csv"  # not downloaded yet too
