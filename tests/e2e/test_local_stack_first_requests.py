"""A client that starts sending as soon as `make local`'s `/health` answers loses no record: neither after a session
of writes (which the stack used to replay one by one while its API already answered, logging each request's record
as unsaved) nor on a table holding a simulated day of traffic. Every request is answered 200, its record is in the
table, the table still holds what it held, and the API logs no `transaction_unsaved`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from devkit.local_servers import answers, wait_until
from devkit.local_stack_state import FAKE_AWS, fake_client_arguments, read_state
from devkit.stages import stage_environment
from local_stack.orchestrator import API_LOG_FILE
from tests.support import REPO_ROOT
from tests.support.local_stack_testing import RunningStack, request_json, running_stack, starting_stack
from tests.support.local_table import write_records

FIRST_REQUESTS = 12
SESSION_WRITES = 1_500  # one PutItem each: seconds of replay for the stack as it was
DAY_RECORDS = 100_000  # a simulated day of steady traffic
TABLE = stage_environment("local")["TABLE_NAME"]


def send_at_first_health(stack: RunningStack) -> list[tuple[int, Any]]:
    """What a script does: poll `/health` and, the moment it answers 200, send its classifications."""
    wait_until(lambda: answers(f"{stack.api_url}/health", timeout_s=1.0), time.monotonic() + 180, stack.process,
               poll_s=0.01)
    return [request_json(f"{stack.api_url}/classify", json.dumps({"headline": f"Markets rally, day {n}"}).encode())
            for n in range(FIRST_REQUESTS)]


def assert_none_lost(stack: RunningStack, sent: list[tuple[int, Any]]) -> None:
    assert [status for status, _ in sent] == [200] * FIRST_REQUESTS, sent
    for _, answer in sent:
        assert request_json(f"{stack.api_url}/transactions/{answer['request_id']}")[0] == 200
    assert "transaction_unsaved" not in (stack.state_dir / API_LOG_FILE).read_text()


def table_size(state_dir: Path) -> int:
    table = boto3.client("dynamodb", endpoint_url=read_state(state_dir)["dynamodb_url"], **fake_client_arguments())
    return sum(page["Count"] for page in table.get_paginator("scan").paginate(TableName=TABLE, Select="COUNT"))


@pytest.mark.slow
def test_after_a_session_of_writes(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_stack(tiny_model_dir, tmp_path) as stack:
        for name, value in {**FAKE_AWS, "TABLE_NAME": TABLE,
                            "AWS_ENDPOINT_URL_DYNAMODB": read_state(stack.state_dir)["dynamodb_url"]}.items():
            monkeypatch.setenv(name, value)
        write_records(SESSION_WRITES)
    with starting_stack(tiny_model_dir, tmp_path, ["--api-log"]) as stack:
        assert_none_lost(stack, send_at_first_health(stack))
        assert table_size(tmp_path) == SESSION_WRITES + FIRST_REQUESTS


@pytest.mark.slow
def test_on_a_simulated_day_of_traffic(tiny_model_dir: Path, tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "local_stack.simulated_day", "--records", str(DAY_RECORDS),
                    "--state-dir", str(tmp_path)], cwd=REPO_ROOT, check=True, capture_output=True)
    with starting_stack(tiny_model_dir, tmp_path, ["--api-log"]) as stack:
        assert_none_lost(stack, send_at_first_health(stack))
        status, recent = request_json(f"{stack.api_url}/transactions?limit=50")
        assert status == 200 and len(recent["transactions"]) == 50
        assert table_size(tmp_path) == DAY_RECORDS + FIRST_REQUESTS
