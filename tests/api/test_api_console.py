"""The console's routes: the static page and its assets, and GET /transactions (recent traffic from the day index)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from chalice.test import Client
from chalicelib import transactions, validation
from chalicelib.transactions import TransactionRecord

from tests.support.api_testing import assert_documented, body_of

Saver = Callable[..., str]


@pytest.fixture
def saved(table: str) -> Saver:
    """Store one transaction created `age` ago (label None: a failed call); returns its request id."""
    def save(age: dt.timedelta, label: str | None = "Alpha") -> str:
        request_id = transactions.new_request_id()
        scores = None if label is None else {label: 0.8, "Other": 0.2}
        outcome = transactions.Outcome(request_id, f"headline {request_id[:8]}", 5.0, label=label, scores=scores,
                                       model_version="v1", error_code=None if label else "model_error")
        record = transactions.build_record(outcome, dt.datetime.now(dt.UTC) - age, "news-classifier", None)
        assert transactions.save([record])
        return request_id
    return save


@pytest.mark.parametrize(("path", "content_type"), [("/", "text/html"), ("/console/console.css", "text/css"),
                                                    ("/console/console.js", "text/javascript")])
def test_console_files_are_served_with_their_type_and_a_strict_policy(client: Client, path: str,
                                                                      content_type: str) -> None:
    response = client.http.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(content_type)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.body


def test_the_page_loads_its_assets_with_relative_urls_so_it_works_under_a_stage_prefix(client: Client) -> None:
    page = client.http.get("/").body.decode()
    assert 'href="console/console.css"' in page and 'src="console/console.js"' in page


def test_the_console_never_inserts_api_text_as_html(client: Client) -> None:
    script = client.http.get("/console/console.js").body.decode()
    assert "textContent" in script
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


@pytest.mark.parametrize("name", ["app.py", "..%2Fapp.py", "transactions.py", "console.JS"])
def test_other_console_names_are_404(client: Client, openapi: dict, name: str) -> None:
    response = client.http.get(f"/console/{name}")
    assert response.status_code == 404
    assert_documented(openapi, "/console/{name}", "GET", response)


def test_recent_traffic_is_newest_first_with_label_counts(client: Client, openapi: dict, saved: Saver) -> None:
    oldest = saved(dt.timedelta(seconds=30), label="Beta")
    failed = saved(dt.timedelta(seconds=20), label=None)
    newest = saved(dt.timedelta(seconds=10), label="Alpha")
    response = client.http.get("/transactions")
    assert response.status_code == 200
    assert_documented(openapi, "/transactions", "GET", response)
    traffic = body_of(response)
    assert [t["request_id"] for t in traffic["transactions"]] == [newest, failed, oldest]
    assert traffic["label_counts"] == {"Alpha": 1, "Beta": 1}
    limited = body_of(client.http.get("/transactions?limit=2"))
    assert [t["request_id"] for t in limited["transactions"]] == [newest, failed]
    assert limited["label_counts"] == {"Alpha": 1}


def test_recent_traffic_reads_yesterday_only_to_fill_the_window(client: Client, saved: Saver) -> None:
    today = saved(dt.timedelta(seconds=5))
    yesterday = saved(dt.timedelta(days=1))
    saved(dt.timedelta(days=2))  # outside the two partitions read
    listed = body_of(client.http.get("/transactions?limit=10"))["transactions"]
    assert [t["request_id"] for t in listed] == [today, yesterday]
    assert [t["request_id"] for t in body_of(client.http.get("/transactions?limit=1"))["transactions"]] == [today]


def test_recent_traffic_queries_the_index_and_never_scans(client: Client, saved: Saver,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    saved(dt.timedelta(seconds=1))

    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("GET /transactions must not Scan the table")

    monkeypatch.setattr(TransactionRecord, "scan", no_scan)
    assert len(body_of(client.http.get("/transactions"))["transactions"]) == 1


def test_an_empty_window_is_an_empty_list(client: Client, table: str) -> None:
    assert body_of(client.http.get("/transactions")) == {"transactions": [], "label_counts": {}}


@pytest.mark.parametrize("query", ["limit=0", f"limit={validation.MAX_RECENT_LIMIT + 1}", "limit=abc", "limit=%C2%B2",
                                   "limit=1.5", "limit=-3", "limit=", "limt=5"])
def test_bad_limits_are_400(client: Client, openapi: dict, table: str, query: str) -> None:
    response = client.http.get(f"/transactions?{query}")
    assert response.status_code == 400
    assert_documented(openapi, "/transactions", "GET", response)
    assert body_of(response)["error"]["code"] == "invalid_request"


def test_recent_traffic_without_the_table_is_503(client: Client, openapi: dict, table_url: str) -> None:
    response = client.http.get("/transactions")
    assert response.status_code == 503
    assert_documented(openapi, "/transactions", "GET", response)
    assert body_of(response)["error"]["code"] == "table_unavailable"
