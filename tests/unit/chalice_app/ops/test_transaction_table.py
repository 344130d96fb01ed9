"""The management CLI: table creation and the replay of `transaction_unsaved` events, from a file or CloudWatch."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import boto3
import pytest
from chalicelib import transactions

from chalice_app.ops.stages import function_name
from chalice_app.ops.transaction_table import main, unsaved_records


def _unsaved_line(request_id: str, prefix: str = "") -> str:
    record = transactions.build_record(
        transactions.Outcome(request_id, f"headline {request_id[:4]}", 4.2, label="Health",
                             scores={"Health": 0.6, "Science": 0.4}, model_version="v9"),
        dt.datetime.now(dt.UTC), "news-classifier", "run-1")
    event = {"level": "ERROR", "message": transactions.UNSAVED_EVENT, "record": record.to_simple_dict()}
    return prefix + json.dumps(event)


def test_create_table_makes_an_on_demand_table_with_ttl_and_its_indexes(
        table_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--stage", "local", "create-table"])
    main(["--stage", "local", "create-table"])
    assert capsys.readouterr().out.splitlines() == ["table news-transactions-local: created",
                                                    "table news-transactions-local: already exists"]
    dynamodb = boto3.client("dynamodb")
    description = dynamodb.describe_table(TableName="news-transactions-local")["Table"]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {index["IndexName"]: [k["AttributeName"] for k in index["KeySchema"]]
               for index in description["GlobalSecondaryIndexes"]}
    assert indexes == {transactions.DAY_INDEX: ["day", "created_at"],
                       transactions.CLIENT_INDEX: ["client_key_id", "created_at"],
                       transactions.REVIEW_INDEX: ["review_day", "review_margin"]}
    ttl = dynamodb.describe_time_to_live(TableName="news-transactions-local")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_replay_from_a_log_file_writes_each_record_once(table: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    ids = [transactions.new_request_id() for _ in range(2)]
    log = tmp_path / "api.log"
    log.write_text("\n".join(["Serving on http://127.0.0.1:8000", _unsaved_line(ids[0]),
                              '{"level": "INFO", "message": "request", "status": 200}', "not json {",
                              _unsaved_line(ids[1], prefix="2026-05-01T10:00:00Z\tabc\t")]) + "\n")
    main(["replay-unsaved", "--log-file", str(log)])
    main(["replay-unsaved", "--log-file", str(log)])
    assert capsys.readouterr().out.splitlines() == [
        "table news-transactions-local: wrote 2 record(s), 0 already present",
        "table news-transactions-local: wrote 0 record(s), 2 already present"]
    stored = transactions.find(ids[1])
    assert (stored.label, stored.run_id) == ("Health", "run-1")
    assert stored.scores.as_dict() == {"Health": 0.6, "Science": 0.4}


def test_replay_reads_the_stages_cloudwatch_log_group(table: str, moto_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", moto_url)
    logs = boto3.client("logs")
    group = f"/aws/lambda/{function_name('local')}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="2026/05/01/[$LATEST]abc")
    request_id = transactions.new_request_id()
    now_ms = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName="2026/05/01/[$LATEST]abc", logEvents=[
        {"timestamp": now_ms, "message": '{"message": "request"}'},
        {"timestamp": now_ms, "message": _unsaved_line(request_id)}])
    main(["replay-unsaved"])
    assert transactions.find(request_id).headline == f"headline {request_id[:4]}"


def test_unsaved_records_skip_other_events_and_broken_lines() -> None:
    lines = ['{"message": "transaction_unsaved"}', '{"message": "transaction_unsaved", "record": "x"}',
             "{broken", "plain text", '["a list"]']
    assert list(unsaved_records(lines)) == []
