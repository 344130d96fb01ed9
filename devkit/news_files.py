"""Headlines from a data file of the project's formats (headed TSV or raw newsCorpora.csv, optionally gzipped), as
the tools on the developer's machine read them: the load tests' traffic and the benchmark's test split.

training_jobs/data.py reads the same formats for training and keeps its own reader, since a SageMaker training job
ships training_jobs/ and model/ only; tests/unit/devkit/test_news_files_as_training_reads.py pins this one to it.
"""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path

from devkit.repo import REPO_ROOT

MAX_HEADLINE_CHARS = 1000  # the API's limit (openapi.yaml: ClassifyRequest.headline.maxLength)
UCI_COLUMNS = 8
UCI_TITLE_COLUMN, UCI_CATEGORY_COLUMN = 1, 4


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


def _rows(path: Path, text: str) -> list[tuple[str, str]]:
    """(title, category code) of every row, as written; the category is "" when a headed file has none."""
    lines = text.splitlines(keepends=True)
    if not any(line.strip() for line in lines):
        raise HeadlineFileError(f"{path}: empty file")
    header = [cell.strip().lower() for cell in next(csv.reader(lines[:1], delimiter="\t"))]
    if "title" in header:
        title, rows = header.index("title"), csv.reader(lines[1:], delimiter="\t")
        category = header.index("category") if "category" in header else None
    elif len(lines[0].rstrip("\r\n").split("\t")) == UCI_COLUMNS:
        title, category = UCI_TITLE_COLUMN, UCI_CATEGORY_COLUMN
        rows = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        raise HeadlineFileError(f"{path}:1: expected a header row with a 'title' column or the {UCI_COLUMNS} "
                                "tab-separated columns of newsCorpora.csv")
    return [(row[title], row[category].strip() if category is not None and len(row) > category else "")
            for row in rows if len(row) > title]


def read_labelled_headlines(path: Path) -> tuple[list[str], list[str]]:
    """Titles and category codes in file order, as training reads them: whitespace collapsed, empty titles dropped."""
    path = Path(path)
    pairs = [(" ".join(title.split()), category) for title, category in _rows(path, _text(path))]
    pairs = [(title, category) for title, category in pairs if title]
    return [title for title, _ in pairs], [category for _, category in pairs]


def read_headlines(path: Path) -> list[str]:
    """The file's headlines the API accepts, whitespace collapsed, in file order; an error when none is left."""
    titles, _ = read_labelled_headlines(path)
    usable = [headline for headline in titles if len(headline) <= MAX_HEADLINE_CHARS]
    if not usable:
        raise HeadlineFileError(f"{path}: no headline of 1 to {MAX_HEADLINE_CHARS} characters")
    return usable
