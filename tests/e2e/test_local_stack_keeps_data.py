"""`make local` keeps its table: a transaction and its feedback written through the API are there after Ctrl-C
and a new start on the same state directory (its database, local_stack/dynamodb.py), and under `make
stand-ins` on that directory too; a killed DynamoDB stand-in: tests/unit/local_stack/test_dynamodb_restarts.py."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from devkit.local_stack_state import DYNAMODB_DATABASE, fake_client_arguments
from devkit.stages import stage_environment
from tests.support.local_stack_testing import request_json, running_stack, running_stand_ins


@pytest.mark.slow
def test_transactions_and_feedback_survive_ctrl_c_and_a_new_start(tiny_model_dir: Path, tmp_path: Path) -> None:
    state_dir = tmp_path / "local"
    state_dir.mkdir()
    with running_stack(tiny_model_dir, state_dir) as stack:
        status, answer = request_json(f"{stack.api_url}/classify", json.dumps({"headline": "Markets rally"}).encode())
        assert status == 200
        request_id = answer["request_id"]
        status, _ = request_json(f"{stack.api_url}/transactions/{request_id}/feedback",
                                 json.dumps({"label": answer["label"]}).encode())
        assert status == 200
    # running_stack sent SIGINT (Ctrl-C) and waited for the stack to stop.
    assert (state_dir / DYNAMODB_DATABASE).stat().st_size > 0
    with running_stack(tiny_model_dir, state_dir) as stack:
        status, stored = request_json(f"{stack.api_url}/transactions/{request_id}")
        assert status == 200
        assert stored["label"] == answer["label"] and stored["feedback_label"] == answer["label"]
        status, recent = request_json(f"{stack.api_url}/transactions?limit=5")
        assert status == 200 and request_id in json.dumps(recent)
    with running_stand_ins(tiny_model_dir, state_dir) as stand_ins:  # what a plain `chalice local` then reads
        table = boto3.client("dynamodb", endpoint_url=stand_ins["dynamodb_url"], **fake_client_arguments())
        item = table.get_item(TableName=stage_environment("local")["TABLE_NAME"],
                              Key={"request_id": {"S": request_id}})["Item"]
        assert item["feedback_label"] == {"S": answer["label"]}
