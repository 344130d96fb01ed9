"""Injected endpoint faults (model/serving/faults.py): their settings, the opt-in admin route, and what boto3 raises."""

from __future__ import annotations

import asyncio
import json
import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from model.serving import faults as faults_module
from model.serving import server as serve
from model.serving.faults import THROTTLED, EndpointFaults, FaultConfigError, FaultInjector, fault_variables_set

HEADLINES = ["Fed leaves interest rates unchanged", "Apple unveils new iPhone"]


# --- settings -----------------------------------------------------------------------------------------------------

def test_defaults_are_a_healthy_endpoint() -> None:
    assert EndpointFaults.from_mapping({}) == EndpointFaults()
    assert EndpointFaults().to_dict() == {"latency_ms": 0.0, "error_rate": 0.0, "error_status": 500,
                                          "throttle_rate": 0.0, "down": None}


def test_a_json_object_sets_every_fault() -> None:
    values = {"latency_ms": 250, "error_rate": 0.5, "error_status": 503, "throttle_rate": 0.25, "down": "not-ready"}
    assert EndpointFaults.from_mapping(values).to_dict() == values


@pytest.mark.parametrize(("values", "named"), [
    ([], "JSON object"),
    ({"latency": 10}, "unknown fault setting(s) latency"),
    ({"latency_ms": -1}, "latency_ms"),
    ({"latency_ms": "100"}, "latency_ms"),
    ({"latency_ms": float("nan")}, "latency_ms"),
    ({"latency_ms": 10_000_000}, "latency_ms"),
    ({"error_rate": 1.5}, "error_rate"),
    ({"throttle_rate": True}, "throttle_rate"),
    ({"error_status": 200}, "error_status"),
    ({"error_status": 500.0}, "error_status"),
    ({"down": "sideways"}, "down must be null or one of not-found, not-ready, unavailable"),
])
def test_a_bad_setting_is_refused_by_name(values: Any, named: str) -> None:
    with pytest.raises(FaultConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        EndpointFaults.from_mapping(values)


def test_environment_variables_set_the_faults_at_start() -> None:
    env = {"MODEL_FAULT_LATENCY_MS": "120", "MODEL_FAULT_ERROR_RATE": "0.1", "MODEL_FAULT_ERROR_STATUS": "502",
           "MODEL_FAULT_THROTTLE_RATE": " ", "MODEL_FAULT_DOWN": "unavailable"}
    assert EndpointFaults.from_env(env) == EndpointFaults(latency_ms=120.0, error_rate=0.1, error_status=502,
                                                          down="unavailable")
    assert fault_variables_set(env) == ["MODEL_FAULT_LATENCY_MS", "MODEL_FAULT_ERROR_RATE",
                                        "MODEL_FAULT_ERROR_STATUS", "MODEL_FAULT_DOWN"]


@pytest.mark.parametrize(("env", "named"), [
    ({"MODEL_FAULT_LATENCY_MS": "slow"}, "MODEL_FAULT_LATENCY_MS='slow' is not a number"),
    ({"MODEL_FAULT_ERROR_STATUS": "5xx"}, "MODEL_FAULT_ERROR_STATUS"),
    ({"MODEL_FAULT_ERROR_RATE": "2"}, "error_rate"),
])
def test_a_bad_environment_variable_is_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(FaultConfigError, match=named):
        EndpointFaults.from_env(env)


# --- the dice -----------------------------------------------------------------------------------------------------

def test_down_answers_every_call_and_outranks_throttling() -> None:
    injector = FaultInjector(EndpointFaults(throttle_rate=1.0, down="not-found"))
    assert {injector.service_fault() for _ in range(20)} == {"not-found"}


def test_rates_hit_about_that_fraction_of_calls() -> None:
    injector = FaultInjector(EndpointFaults(throttle_rate=0.3, error_rate=0.6, error_status=503), random.Random(7))
    throttled = sum(injector.service_fault() == THROTTLED for _ in range(4000))
    failed = sum(asyncio.run(injector.model_fault()) == 503 for _ in range(4000))
    assert 0.27 < throttled / 4000 < 0.33
    assert 0.57 < failed / 4000 < 0.63
    healthy = FaultInjector()
    assert healthy.service_fault() is None and asyncio.run(healthy.model_fault()) is None


def test_latency_is_awaited_before_the_model_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(faults_module.asyncio, "sleep", record_sleep)
    assert asyncio.run(FaultInjector(EndpointFaults(latency_ms=250)).model_fault()) is None
    assert slept == [0.25]


# --- opt-in -------------------------------------------------------------------------------------------------------

def test_fault_injection_is_off_unless_the_flag_is_given(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert serve.parse_args(["--model-dir", str(tiny_model_dir)]).faults is None
    monkeypatch.setenv("MODEL_FAULT_DOWN", "not-ready")
    args = serve.parse_args(["--model-dir", str(tiny_model_dir), "--enable-fault-injection"])
    assert args.faults == EndpointFaults(down="not-ready")


@pytest.mark.parametrize(("flag", "value"), [([], "not-ready"), (["--enable-fault-injection"], "sideways")])
def test_fault_variables_without_the_flag_or_with_a_bad_value_stop_the_server(
        tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], flag: list[str],
        value: str) -> None:
    monkeypatch.setenv("MODEL_FAULT_DOWN", value)
    with pytest.raises(SystemExit):
        serve.parse_args(["--model-dir", str(tiny_model_dir), *flag])
    assert "MODEL_FAULT_DOWN" in capsys.readouterr().err


def _admin(url: str, method: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(f"{url}/_faults", data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_without_the_flag_the_admin_route_does_not_exist(endpoint_url: str, method: str) -> None:
    assert _admin(endpoint_url, method, b'{"down": "not-found"}' if method == "PUT" else None)[0] == 404


# --- the running endpoint -----------------------------------------------------------------------------------------

@pytest.fixture
def faulty(fault_endpoint_url: str) -> Iterator[str]:
    """The fault-injecting endpoint, healthy again after the test."""
    yield fault_endpoint_url
    assert _admin(fault_endpoint_url, "DELETE")[0] == 200


def set_faults(url: str, **faults: Any) -> None:
    assert _admin(url, "PUT", json.dumps(faults).encode()) == (200, {**EndpointFaults().to_dict(), **faults})


def runtime_client(url: str, read_timeout: float = 30) -> Any:
    return boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout))


def invoke(client: Any) -> dict[str, Any]:
    return client.invoke_endpoint(EndpointName="news-classifier", ContentType="application/json",
                                  Body=json.dumps({"inputs": HEADLINES}))


@pytest.mark.slow
@pytest.mark.parametrize("body", [b"{not json", b'"down"', b'{"down": "sideways"}', b'{"latency": 5}'])
def test_the_admin_route_refuses_bad_faults_and_keeps_the_old_ones(faulty: str, body: bytes) -> None:
    set_faults(faulty, latency_ms=5)
    status, answer = _admin(faulty, "PUT", body)
    assert status == 400
    assert json.loads(answer)["message"]
    assert _admin(faulty, "GET")[1]["latency_ms"] == 5


@pytest.mark.slow
def test_delete_heals_the_endpoint(faulty: str) -> None:
    set_faults(faulty, down="unavailable")
    assert _admin(faulty, "DELETE") == (200, EndpointFaults().to_dict())
    assert len(json.loads(invoke(runtime_client(faulty))["Body"].read())["predictions"]) == len(HEADLINES)


@pytest.mark.slow
@pytest.mark.parametrize(("faults", "exception", "status"), [
    ({"down": "not-found"}, "ValidationError", 400),
    ({"down": "not-ready"}, "ModelNotReadyException", 429),
    ({"down": "unavailable"}, "ServiceUnavailable", 503),
])
def test_a_down_endpoint_raises_the_modelled_exception(faulty: str, faults: dict[str, Any], exception: str,
                                                       status: int) -> None:
    set_faults(faulty, **faults)
    client = runtime_client(faulty)
    with pytest.raises(getattr(client.exceptions, exception)) as caught:
        invoke(client)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


@pytest.mark.slow
def test_throttling_is_a_400_throttling_exception_as_aws_sends_it(faulty: str) -> None:
    set_faults(faulty, throttle_rate=1.0)
    with pytest.raises(ClientError) as caught:
        invoke(runtime_client(faulty))
    response = caught.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == ("ThrottlingException", 400)


@pytest.mark.slow
def test_a_failing_model_is_a_model_error_with_the_original_status(faulty: str) -> None:
    set_faults(faulty, error_rate=1.0, error_status=503)
    client = runtime_client(faulty)
    with pytest.raises(client.exceptions.ModelError) as caught:
        invoke(client)
    assert caught.value.response["OriginalStatusCode"] == 503
    assert json.loads(caught.value.response["OriginalMessage"])["type"] == "InjectedFault"


@pytest.mark.slow
def test_model_faults_also_reach_the_container_route_but_front_door_faults_do_not(faulty: str) -> None:
    request = urllib.request.Request(f"{faulty}/invocations", data=json.dumps({"inputs": HEADLINES}).encode(),
                                     headers={"Content-Type": "application/json"})
    set_faults(faulty, throttle_rate=1.0, down="not-found")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    set_faults(faulty, error_rate=1.0, error_status=500)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 500


@pytest.mark.slow
def test_latency_beyond_the_client_timeout_is_a_read_timeout(faulty: str) -> None:
    set_faults(faulty, latency_ms=2000)
    with pytest.raises(ReadTimeoutError):
        invoke(runtime_client(faulty, read_timeout=0.3))
