"""Real headlines for the load test, read from a data file of the project's formats.

Two layouts, told apart by the first line, optionally gzipped: a headed TSV with a `title` column (the NLP-100
splits, corpus.tsv.gz) or the UCI newsCorpora.csv rows (8 tab-separated columns, the title second).
Headlines the API would refuse (empty, over its length limit) are skipped: the load test sends valid traffic,
so that every request it sends must leave a transaction.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("NEWS_DATA_DIR", REPO_ROOT.parent / "shared" / "data" / "news_aggregator"))
DEFAULT_HEADLINES = DATA_DIR / "nlp100" / "test.tsv"  # the NLP-100 test split: headlines the model never saw
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


def _titles(path: Path, text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise HeadlineFileError(f"{path}: empty file")
    header = [cell.strip().lower() for cell in rows[0]]
    if "title" in header:
        column, body = header.index("title"), rows[1:]
    elif len(header) == UCI_COLUMNS:
        column, body = UCI_TITLE_COLUMN, rows
    else:
        raise HeadlineFileError(f"{path}:1: expected a header row with a 'title' column or the {UCI_COLUMNS} "
                                "tab-separated columns of newsCorpora.csv")
    return [row[column] for row in body if len(row) > column]


def read_headlines(path: Path) -> list[str]:
    """The file's headlines the API accepts, whitespace collapsed, in file order; an error when none is left."""
    path = Path(path)
    headlines = [" ".join(title.split()) for title in _titles(path, _text(path))]
    usable = [headline for headline in headlines if headline and len(headline) <= MAX_HEADLINE_CHARS]
    if not usable:
        raise HeadlineFileError(f"{path}: no headline of 1 to {MAX_HEADLINE_CHARS} characters")
    return usable
