"""Real headlines for the load test from a data file of the project's formats (headed TSV or raw newsCorpora.csv,
optionally gzipped); headlines the API would refuse are skipped, so every request sent must leave a transaction.

A copy of training_jobs/data.py's reader and training_jobs/config.py's default file, which this box may not
import; tests/unit/loadtest/test_headlines_copies.py pins them together.
"""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path

from devkit.repo import REPO_ROOT

MAX_HEADLINE_CHARS = 1000  # the API's limit (openapi.yaml: ClassifyRequest.headline.maxLength)
UCI_COLUMNS = 8
UCI_TITLE_COLUMN = 1


class HeadlineFileError(ValueError):
    """The file cannot give headlines; the message names the file and what is wrong."""


def _text(path: Path) -> str:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        return raw.decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise HeadlineFileError(f"{path}: no such file") from exc
    except (OSError, EOFError) as exc:
        raise HeadlineFileError(f"{path}: cannot read ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise HeadlineFileError(f"{path}: not UTF-8 (byte {exc.start}); convert the file to UTF-8") from exc


def default_headlines() -> Path:
    """The NLP-100 test split of the data folder (NEWS_DATA_DIR, else beside the repository): unseen headlines."""
    data = Path(os.environ.get("NEWS_DATA_DIR", REPO_ROOT.parent / "shared" / "data" / "news_aggregator"))
    return data / "nlp100" / "test.tsv"


def _titles(path: Path, text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if not any(line.strip() for line in lines):
        raise HeadlineFileError(f"{path}: empty file")
    header = [cell.strip().lower() for cell in next(csv.reader(lines[:1], delimiter="\t"))]
    if "title" in header:
        column, rows = header.index("title"), csv.reader(lines[1:], delimiter="\t")
    elif len(lines[0].rstrip("\r\n").split("\t")) == UCI_COLUMNS:
        column, rows = UCI_TITLE_COLUMN, csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        raise HeadlineFileError(f"{path}:1: expected a header row with a 'title' column or the {UCI_COLUMNS} "
                                "tab-separated columns of newsCorpora.csv")
    return [row[column] for row in rows if len(row) > column]


def read_headlines(path: Path) -> list[str]:
    """The file's headlines the API accepts, whitespace collapsed, in file order; an error when none is left."""
    path = Path(path)
    headlines = [" ".join(title.split()) for title in _titles(path, _text(path))]
    usable = [headline for headline in headlines if headline and len(headline) <= MAX_HEADLINE_CHARS]
    if not usable:
        raise HeadlineFileError(f"{path}: no headline of 1 to {MAX_HEADLINE_CHARS} characters")
    return usable
