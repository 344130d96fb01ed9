"""The UCI News Aggregator archive, downloaded into the user cache when no data is found (docs/training.md#data).

    python -m training_jobs.uci_archive        # what training does by itself when it needs the file

No checksum of the archive is published, so what is checked is what the file must be: the download as long as the
server said, the zip's CRC-32 of newsCorpora.csv, and every row in the raw format training reads (8 tab-separated
columns, a known category code), 422,937 of them from UCI (the archive's readme: "422937 news pages"). Everything is
written to temporary files beside the target and renamed into place only once it passed, so an interrupted or bad
download leaves nothing behind. Every failure is a `DataUnavailableError` that says how to get the file by hand.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from training_jobs.config import CORPUS_FILE, cached_corpus
from training_jobs.data import UCI, DataError, read_examples, sniff_table

log = logging.getLogger("training_jobs.uci_archive")

UCI_PAGE = "https://archive.ics.uci.edu/dataset/359/news+aggregator"
UCI_URL = "https://archive.ics.uci.edu/static/public/359/news+aggregator.zip"
UCI_ROWS = 422_937
URL_VARIABLE = "NEWS_CORPUS_URL"  # a mirror of the archive, for machines that cannot reach UCI
CHUNK = 1 << 20
CACHED_MODE = 0o644  # a plain data file; the scratch file it was is private (mkstemp) until it passed
TIMEOUT_S = 60


class DataUnavailableError(DataError):
    """No data was configured and the archive could not be fetched; the message says how to get it by hand."""


@dataclass(frozen=True)
class Source:
    """Where the archive comes from, and how many rows its newsCorpora.csv must have (None: not known)."""

    url: str
    rows: int | None


def default_source() -> Source:
    """UCI, or the mirror `NEWS_CORPUS_URL` names (its row count is not known, so not checked)."""
    mirror = os.environ.get(URL_VARIABLE)
    return Source(mirror, None) if mirror else Source(UCI_URL, UCI_ROWS)


def available(data: Path, source: Source | None = None) -> Path:
    """`data`; when it is the cached corpus (the default without other data) and missing, downloaded first."""
    data = Path(data)
    if data != cached_corpus() or data.exists():
        return data
    return fetch(data, source or default_source())


def fetch(target: Path, source: Source) -> Path:
    """Download the archive, check it and its newsCorpora.csv, and move that file to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("no data found: downloading the UCI News Aggregator archive from %s into %s", source.url, target.parent)
    with scratch_file(target.parent, ".zip") as archive, scratch_file(target.parent, ".csv") as extracted:
        download(source.url, archive, target)
        extract_corpus(archive, extracted, source.url, target)
        check_corpus(extracted, source, target)
        extracted.chmod(CACHED_MODE)
        os.replace(extracted, target)
    log.info("%s: checked and cached", target)
    return target


@contextmanager
def scratch_file(folder: Path, suffix: str) -> Iterator[Path]:
    """A new hidden file in `folder`, removed on the way out unless it was renamed away (Ctrl-C included)."""
    handle, name = tempfile.mkstemp(prefix=f".{CORPUS_FILE}-", suffix=suffix, dir=folder)
    os.close(handle)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def download(url: str, path: Path, target: Path) -> None:
    """`url` into `path` with a progress bar; a refused, failed or short download is a `DataUnavailableError`."""
    request = urllib.request.Request(url, headers={"User-Agent": "news-classifier"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(path, "wb") as out:
            expected = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=Path(url).name) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise DataUnavailableError(unavailable(f"{url} answered HTTP {exc.code} {exc.reason}", target)) from None
    except urllib.error.URLError as exc:
        raise DataUnavailableError(unavailable(f"cannot reach {url} ({exc.reason})", target)) from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, a body shorter than its length
        raise DataUnavailableError(unavailable(f"the download from {url} failed ({exc!r})", target)) from None
    if expected is not None and path.stat().st_size != expected:
        raise DataUnavailableError(unavailable(f"the download from {url} stopped at {path.stat().st_size:,} of "
                                          f"{expected:,} bytes", target))


def extract_corpus(archive: Path, out: Path, url: str, target: Path) -> None:
    """The archive's newsCorpora.csv into `out`; reading it to the end checks its CRC-32."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [name for name in zipped.namelist()
                       if Path(name).name == CORPUS_FILE and not name.startswith("__MACOSX/")]
            if len(members) != 1:
                raise DataUnavailableError(unavailable(f"the archive from {url} holds {len(members)} {CORPUS_FILE} "
                                                  f"files, not one: not the UCI archive", target))
            with zipped.open(members[0]) as member, open(out, "wb") as copy:
                shutil.copyfileobj(member, copy, CHUNK)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataUnavailableError(unavailable(f"the download from {url} is not an intact zip archive ({exc})",
                                          target)) from None


def check_corpus(path: Path, source: Source, target: Path) -> None:
    """Every row as training reads it, raw UCI format only, and the row count the source documents."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as file:
            first = file.readline()
        if sniff_table(path, first).kind != UCI:
            raise DataError(f"{path}:1: a header row, not the raw headerless format of newsCorpora.csv")
        rows = len(read_examples(path))
    except DataError as exc:
        raise DataUnavailableError(unavailable(f"the {CORPUS_FILE} from {source.url} is not the UCI file: "
                                          f"{str(exc).replace(str(path), CORPUS_FILE)}", target)) from None
    if source.rows is not None and rows != source.rows:
        raise DataUnavailableError(unavailable(f"the {CORPUS_FILE} from {source.url} has {rows:,} rows, not the "
                                          f"{source.rows:,} UCI documents", target))


def unavailable(problem: str, target: Path) -> str:
    """The one message of a failed fetch: what went wrong, then how to get the data by hand."""
    return (f"no training data found, and {problem}. Nothing was kept.\n"
            f"Get the data by hand: download {UCI_URL} (from {UCI_PAGE}), unzip it, and name its {CORPUS_FILE}:\n"
            f"  make local DATA=/path/to/{CORPUS_FILE}   (make train too; python -m training_jobs.train --data ...)\n"
            f"  or set NEWS_DATA_DIR=/path/to/{CORPUS_FILE}, or move the file to {target}\n"
            f"Where UCI is blocked, {URL_VARIABLE}=URL names a mirror of the archive.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        print(available(cached_corpus()))
    except DataUnavailableError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
