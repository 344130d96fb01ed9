"""A simulated day of traffic (local_stack/simulated_day.py): records the API would have stored, spread over
the day, written straight into the local table's database, where the stack's DynamoDB stand-in serves them."""

from __future__ import annotations

import datetime as dt
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.local_stack_state import DYNAMODB_DATABASE, FAKE_AWS
from devkit.stages import stage_environment
from local_stack.orchestrator import single_instance
from local_stack.simulated_day import simulated_records
from tests.support import REPO_ROOT
from tests.support.local_table import LocalDynamoDB

END = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)


def test_the_day_is_what_the_api_stores_over_24_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSACTION_TTL_DAYS", "90")
    records = list(simulated_records(2_000, END, random.Random(1), "news-classifier"))
    assert all(END - dt.timedelta(days=1) <= r.created_at <= END for r in records)
    assert {r.day for r in records} == {"2026-03-01", "2026-03-02"}
    statuses = [r.status for r in records]
    assert statuses.count("ok") > 1_900 and {"rejected", "error"} <= set(statuses)
    classified = [r for r in records if r.status == "ok"]
    assert all(r.label == max(r.scores.as_dict(), key=r.scores.as_dict().get) for r in classified)
    assert any(r.uncertain for r in classified) and not all(r.uncertain for r in classified)
    assert 20 < sum(r.feedback_label is not None for r in records) < 120
    assert len({r.request_id for r in records}) == 2_000


def test_it_refuses_a_state_directory_a_stack_is_using(tmp_path: Path) -> None:
    with single_instance(tmp_path):
        run = subprocess.run([sys.executable, "-m", "local_stack.simulated_day", "--records", "10",
                              "--state-dir", str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode != 0 and "already running" in run.stderr
    assert not (tmp_path / DYNAMODB_DATABASE).exists()


@pytest.mark.slow
def test_the_stack_serves_the_day_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import transactions

    for _ in range(2):  # a second day adds to the first, in the table the first created
        run = subprocess.run([sys.executable, "-m", "local_stack.simulated_day", "--records", "500",
                              "--state-dir", str(tmp_path)], cwd=REPO_ROOT, check=True, capture_output=True, text=True)
        assert "werkzeug" not in run.stderr  # the private moto that creates the table says nothing
    dynamodb = LocalDynamoDB(tmp_path / DYNAMODB_DATABASE)
    dynamodb.start()
    try:
        for name, value in {**FAKE_AWS, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.url,
                            "TABLE_NAME": stage_environment("local")["TABLE_NAME"]}.items():
            monkeypatch.setenv(name, value)
        assert not transactions.create_table()  # the day's table is the stage's
        now = dt.datetime.now(dt.UTC)
        day = list(transactions.between(now - dt.timedelta(days=1, minutes=1), now))
        assert len(day) == 1_000 and [r.created_at for r in day] == sorted(r.created_at for r in day)
        assert transactions.find(day[0].request_id).headline == day[0].headline
    finally:
        dynamodb.stop(signal.SIGTERM)
