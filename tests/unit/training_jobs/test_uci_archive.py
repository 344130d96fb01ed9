"""Fetching the UCI archive when no data is found: the real code path against a local server (nothing else is
reachable from tests), every way a download goes wrong, and nothing half-written left in the cache."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.local_servers import unused_port
from tests.support.archive_server import Answer, ArchiveServer, archive_server, corpus_text, uci_zip
from training_jobs import uci_archive
from training_jobs.config import CORPUS_FILE, cached_corpus
from training_jobs.data import read_examples
from training_jobs.uci_archive import UCI_PAGE, UCI_URL, DataUnavailableError, Source, available, fetch

ROWS = 300
PATH = "/static/public/359/news+aggregator.zip"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user cache; `cached_corpus()` points into it."""
    monkeypatch.setenv("NEWS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def server() -> Iterator[ArchiveServer]:
    with archive_server() as running:
        yield running


def serve(server: ArchiveServer, body: bytes, **answer: float) -> Source:
    server.answers[PATH] = Answer(body, **answer)
    return Source(server.url(PATH), ROWS)


def test_downloads_checks_and_caches_the_corpus(server: ArchiveServer, cache: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    corpus = corpus_text(ROWS)
    target = fetch(cached_corpus(), serve(server, uci_zip(corpus)))
    assert target == cache / CORPUS_FILE and target.read_text() == corpus
    assert len(read_examples(target)) == ROWS
    assert sorted(path.name for path in cache.iterdir()) == [CORPUS_FILE]  # no archive, no scratch files
    assert target.stat().st_mode & 0o777 == 0o644  # readable like any cached data, not private like a scratch file
    assert "news+aggregator.zip" in capsys.readouterr().err  # the progress bar


def test_available_downloads_only_the_missing_default(server: ArchiveServer, cache: Path, tmp_path: Path) -> None:
    source = serve(server, uci_zip(corpus_text(ROWS)))
    elsewhere = tmp_path / "mine.csv"
    assert available(elsewhere, source) == elsewhere and not cache.exists()  # a path the user named: never fetched
    assert available(cached_corpus(), source).is_file()
    server.answers.clear()  # a second call must not ask the server again
    assert available(cached_corpus(), source) == cached_corpus()


def test_a_mirror_named_by_the_environment_is_checked_for_its_format_only(server: ArchiveServer, cache: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    serve(server, uci_zip(corpus_text(ROWS + 1)))
    monkeypatch.setenv("NEWS_CORPUS_URL", server.url(PATH))
    assert available(cached_corpus()) == cached_corpus()
    assert uci_archive.default_source() == Source(server.url(PATH), None)
    monkeypatch.delenv("NEWS_CORPUS_URL")
    assert uci_archive.default_source() == Source(UCI_URL, uci_archive.UCI_ROWS)


def corrupt_member(archive: bytes) -> bytes:
    """The same archive with one byte of the compressed corpus flipped: its CRC-32 (or the stream) no longer holds."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        info = zipped.getinfo(CORPUS_FILE)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
    return archive[:start] + bytes([archive[start] ^ 0xFF]) + archive[start + 1:]


@pytest.mark.parametrize(("answer", "reason"), [
    (lambda: Answer(b"<html>Service Unavailable</html>", 503), "answered HTTP 503"),
    (lambda: Answer(uci_zip(corpus_text(ROWS)), sent=2000), "stopped at 2,000 of"),
    (lambda: Answer(uci_zip(corpus_text(ROWS))[:-100]), "not an intact zip archive"),
    (lambda: Answer(corrupt_member(uci_zip(corpus_text(ROWS)))), "not an intact zip archive"),
    (lambda: Answer(b"<!doctype html><title>Dataset moved</title>"), "not an intact zip archive"),
    (lambda: Answer(uci_zip(None)), f"holds 0 {CORPUS_FILE} files"),
    (lambda: Answer(uci_zip(corpus_text(ROWS + 1))), f"has {ROWS + 1} rows, not the {ROWS}"),
    (lambda: Answer(uci_zip("category\ttitle\nb\tA headline\n")), "a header row"),
    (lambda: Answer(uci_zip(corpus_text(ROWS).replace("\tb\t", "\tx\t", 1))), "unknown category code 'x'"),
    (lambda: Answer(uci_zip(corpus_text(ROWS) + "1\tshort\trow\n")), "newsCorpora.csv:301: 3 column(s)"),
])
def test_a_bad_download_keeps_nothing_and_says_how_to_get_the_data(server: ArchiveServer, cache: Path,
                                                                   answer: object, reason: str) -> None:
    server.answers[PATH] = answer()  # type: ignore[operator]
    with pytest.raises(DataUnavailableError) as raised:
        fetch(cached_corpus(), Source(server.url(PATH), ROWS))
    assert reason in str(raised.value)
    assert_says_how_to_get_the_data(str(raised.value))
    assert list(cache.iterdir()) == []


def test_an_unreachable_host_says_how_to_get_the_data(cache: Path) -> None:
    with pytest.raises(DataUnavailableError, match="cannot reach") as raised:
        fetch(cached_corpus(), Source(f"http://127.0.0.1:{unused_port()}{PATH}", ROWS))
    assert_says_how_to_get_the_data(str(raised.value))
    assert list(cache.iterdir()) == []


def test_a_stalled_server_times_out(server: ArchiveServer, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uci_archive, "TIMEOUT_S", 0.2)
    with pytest.raises(DataUnavailableError, match=r"failed .*timed out"):
        fetch(cached_corpus(), serve(server, uci_zip(corpus_text(ROWS)), stall_s=1))
    assert list(cache.iterdir()) == []


def test_ctrl_c_during_the_download_leaves_nothing(server: ArchiveServer, cache: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    class Interrupted:
        def __init__(self, **_: object) -> None: ...

        def __enter__(self) -> Interrupted:
            return self

        def __exit__(self, *_: object) -> None: ...

        def update(self, _: int) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(uci_archive, "tqdm", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch(cached_corpus(), serve(server, uci_zip(corpus_text(ROWS))))
    assert list(cache.iterdir()) == []


def test_a_cached_file_is_replaced_whole_or_not_at_all(server: ArchiveServer, cache: Path) -> None:
    cache.mkdir()
    old = cached_corpus()
    old.write_text(corpus_text(5))
    with pytest.raises(DataUnavailableError):
        fetch(old, serve(server, b"not a zip"))
    assert old.read_text() == corpus_text(5)
    fetch(old, serve(server, uci_zip(corpus_text(ROWS))))
    assert old.read_text() == corpus_text(ROWS)


def test_command_line_prints_the_cached_corpus(server: ArchiveServer, cache: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    serve(server, uci_zip(corpus_text(ROWS)))
    monkeypatch.setenv("NEWS_CORPUS_URL", server.url(PATH))
    assert uci_archive.main([]) == 0
    assert capsys.readouterr().out.strip() == str(cached_corpus())
    monkeypatch.setenv("NEWS_CORPUS_URL", f"http://127.0.0.1:{unused_port()}/")
    cached_corpus().unlink()
    assert uci_archive.main([]) == 2


def assert_says_how_to_get_the_data(message: str) -> None:
    for named in (UCI_URL, UCI_PAGE, f"DATA=/path/to/{CORPUS_FILE}", "NEWS_DATA_DIR=", str(cached_corpus())):
        assert named in message
