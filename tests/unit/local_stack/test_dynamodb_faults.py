"""The DynamoDB fault proxy (local_stack/dynamodb_faults.py) in front of moto: forwarding, throttling, outages."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from devkit.local_servers import answers, wait_until
from local_stack.dynamodb_faults import DynamoDBFaultConfigError, FaultProxy, TableFaults, outage_seconds

TABLE = "faults-test"


def test_table_faults_parse_from_json_and_environment() -> None:
    assert TableFaults.from_mapping({}) == TableFaults()
    assert TableFaults.from_mapping({"throttle_rate": 0.5, "throttle_error": "ThrottlingException"}) == \
        TableFaults(0.5, "ThrottlingException")
    assert TableFaults.from_env({"DYNAMODB_FAULT_THROTTLE_RATE": "0.25"}) == TableFaults(0.25)


@pytest.mark.parametrize(("values", "named"), [
    ([], "JSON object"),
    ({"outage": True}, "unknown fault setting"),
    ({"throttle_rate": 2}, "throttle_rate"),
    ({"throttle_rate": "0.5"}, "throttle_rate"),
    ({"throttle_error": "SlowDown"}, "throttle_error"),
])
def test_bad_table_faults_are_refused_by_name(values: Any, named: str) -> None:
    with pytest.raises(DynamoDBFaultConfigError, match=named):
        TableFaults.from_mapping(values)


def test_bad_environment_is_refused() -> None:
    with pytest.raises(DynamoDBFaultConfigError, match="DYNAMODB_FAULT_"):
        TableFaults.from_env({"DYNAMODB_FAULT_THROTTLE_RATE": "often"})


@pytest.mark.parametrize("values", [None, {}, {"seconds": 0}, {"seconds": -1}, {"seconds": "5"}, {"seconds": 601}])
def test_an_outage_needs_a_positive_bounded_length(values: Any) -> None:
    with pytest.raises(DynamoDBFaultConfigError, match="seconds"):
        outage_seconds(values)


@pytest.fixture
def proxy(moto_url: str) -> Iterator[FaultProxy]:
    running = FaultProxy("127.0.0.1", 0, moto_url)
    running.start()
    yield running
    running.stop()


def dynamodb(url: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))


def create_table(client: Any) -> None:
    client.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")


def admin(url: str, method: str, path: str = "/_faults", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{url}{path}", data=data, method=method),
                                    timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_without_faults_every_call_reaches_moto(proxy: FaultProxy, moto_url: str) -> None:
    client = dynamodb(proxy.url)
    create_table(client)
    client.put_item(TableName=TABLE, Item={"id": {"S": "a"}})
    assert dynamodb(moto_url).get_item(TableName=TABLE, Key={"id": {"S": "a"}})["Item"] == {"id": {"S": "a"}}


@pytest.mark.parametrize("error", ["ProvisionedThroughputExceededException", "ThrottlingException",
                                   "RequestLimitExceeded"])
def test_throttling_raises_dynamodbs_own_exception(proxy: FaultProxy, error: str) -> None:
    client = dynamodb(proxy.url)
    create_table(client)
    assert admin(proxy.url, "PUT", body={"throttle_rate": 1, "throttle_error": error}) == \
        (200, {"throttle_rate": 1, "throttle_error": error})
    with pytest.raises(getattr(client.exceptions, error)) as caught:
        client.put_item(TableName=TABLE, Item={"id": {"S": "a"}})
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert admin(proxy.url, "DELETE") == (200, TableFaults().to_dict())
    client.put_item(TableName=TABLE, Item={"id": {"S": "a"}})


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("PUT", "/_faults", {"throttle_rate": 7}, 400),
    ("POST", "/_faults", {}, 405),
    ("POST", "/_faults/outage", {"seconds": "long"}, 400),
])
def test_bad_admin_requests_are_refused(proxy: FaultProxy, method: str, path: str, body: Any, status: int) -> None:
    answer = admin(proxy.url, method, path, body)
    assert answer[0] == status and answer[1]["message"]
    assert admin(proxy.url, "GET") == (200, TableFaults().to_dict())


def _refused(client: Any) -> bool:
    """A read is refused, as by a stopped server (the kept-alive connection, cut as the outage begins, is not)."""
    try:
        client.get_item(TableName=TABLE, Key={"id": {"S": "before"}})
    except EndpointConnectionError:
        return True
    except ConnectionClosedError:
        return False
    return False


def _reads(client: Any) -> dict[str, Any] | None:
    try:
        return client.get_item(TableName=TABLE, Key={"id": {"S": "before"}})["Item"]
    except EndpointConnectionError:
        return None


def test_an_outage_refuses_connections_until_it_ends_then_the_table_is_back_intact(proxy: FaultProxy) -> None:
    client = dynamodb(proxy.url)
    create_table(client)
    client.put_item(TableName=TABLE, Item={"id": {"S": "before"}})
    assert admin(proxy.url, "POST", "/_faults/outage", {"seconds": 600}) == (202, {"outage_s": 600})
    wait_until(lambda: _refused(client), time.monotonic() + 30, poll_s=0.05)
    assert _refused(client)  # and it stays refused: the outage lasts until it is ended
    proxy.end_outage()
    wait_until(lambda: _reads(client) is not None, time.monotonic() + 30, poll_s=0.05)
    assert _reads(client) == {"id": {"S": "before"}}


def test_an_outage_ends_by_itself_when_its_time_is_up(proxy: FaultProxy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="dynamodb_faults")
    assert admin(proxy.url, "POST", "/_faults/outage", {"seconds": 0.1}) == (202, {"outage_s": 0.1})
    wait_until(lambda: "outage over" in caplog.text, time.monotonic() + 30, poll_s=0.05)
    wait_until(lambda: answers(f"{proxy.url}/_faults"), time.monotonic() + 30, poll_s=0.05)
