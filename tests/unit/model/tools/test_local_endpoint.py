"""The local endpoint through real boto3: same calls, answers and modelled exceptions as SageMaker on AWS."""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from devkit.local_servers import answers, wait_until
from model.artifact import read_metadata
from model.labels import LabelMap
from model.tools.local_endpoint import running_endpoint, running_server, serve_command

pytestmark = pytest.mark.slow
HEADLINES = ["Fed leaves interest rates unchanged", "Apple unveils new iPhone", "Ebola outbreak spreads"]


def runtime_client(url: str) -> Any:
    return boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 1}, read_timeout=30))


def invoke(client: Any, payload: Any, endpoint: str = "news-classifier", **kwargs: Any) -> dict[str, Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.invoke_endpoint(EndpointName=endpoint, Body=body, **{"ContentType": "application/json", **kwargs})


@pytest.fixture(scope="module")
def client(endpoint_url: str) -> Any:
    return runtime_client(endpoint_url)


def test_invoke_endpoint_answers_labels_of_the_artifact(client: Any, tiny_model_dir: Path) -> None:
    response = invoke(client, {"inputs": HEADLINES})
    body = json.loads(response["Body"].read())
    names = set(LabelMap.load(tiny_model_dir).names)
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert body["model_version"] == read_metadata(tiny_model_dir)["model_version"]
    assert len(body["predictions"]) == len(HEADLINES)
    for prediction in body["predictions"]:
        assert set(prediction["scores"]) == names
        assert prediction["label"] == max(prediction["scores"], key=prediction["scores"].get)
        assert sum(prediction["scores"].values()) == pytest.approx(1.0, abs=1e-4)


def test_a_single_headline_gets_one_prediction(client: Any) -> None:
    body = json.loads(invoke(client, {"inputs": HEADLINES[0]})["Body"].read())
    assert len(body["predictions"]) == 1


def test_environment_variable_points_unchanged_boto3_code_at_the_endpoint(
        endpoint_url: str, monkeypatch: pytest.MonkeyPatch, aws_credentials: None) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint_url)
    response = invoke(boto3.client("sagemaker-runtime"), {"inputs": HEADLINES[:1]})
    assert json.loads(response["Body"].read())["predictions"]


def test_unknown_endpoint_raises_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError, match=r"Endpoint no-such-endpoint .* not found"):
        invoke(client, {"inputs": HEADLINES}, endpoint="no-such-endpoint")


@pytest.mark.parametrize(("payload", "content_type", "reason"), [
    (b"{not json", "application/json", "not valid JSON"),
    ({"text": "Fed raises rates"}, "application/json", '"inputs"'),
    ({"inputs": []}, "application/json", "non-empty list"),
    ({"inputs": ["ok", 3]}, "application/json", "non-empty string"),
    ({"inputs": "Fed raises rates"}, "text/csv", "unsupported content type"),
])
def test_bad_payload_raises_model_error_with_the_original_answer(
        client: Any, payload: Any, content_type: str, reason: str) -> None:
    with pytest.raises(client.exceptions.ModelError) as caught:
        invoke(client, payload, ContentType=content_type)
    error = caught.value.response
    assert error["OriginalStatusCode"] == 400
    assert reason in json.loads(error["OriginalMessage"])["message"]
    assert error["Error"]["Message"].startswith("Received client error (400) from primary")


def test_unsupported_accept_raises_model_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError, match="unsupported accept type"):
        invoke(client, {"inputs": HEADLINES}, Accept="text/csv")


def test_body_over_six_megabytes_is_refused_and_the_server_lives_on(client: Any) -> None:
    oversize = json.dumps({"inputs": ["x" * (6 * 1024 * 1024)]}).encode()
    with pytest.raises(client.exceptions.ValidationError, match="oversize body"):
        invoke(client, oversize)
    assert json.loads(invoke(client, {"inputs": HEADLINES})["Body"].read())["predictions"]


def test_container_refuses_a_declared_oversize_body_before_reading_it(endpoint_url: str) -> None:
    host, port = endpoint_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(6 * 1024 * 1024 + 1))
    connection.endheaders()  # no body sent: the answer must not wait for it
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["type"] == "PayloadTooLarge"
    connection.close()


def test_container_contract_routes(endpoint_url: str) -> None:
    with urllib.request.urlopen(f"{endpoint_url}/ping", timeout=10) as ping:
        assert ping.status == 200
        assert json.loads(ping.read())["endpoints"]["news-classifier"]["runtime"] == "torch"
    request = urllib.request.Request(f"{endpoint_url}/invocations", data=json.dumps({"inputs": HEADLINES}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert len(json.loads(response.read())["predictions"]) == len(HEADLINES)
    bad = urllib.request.Request(f"{endpoint_url}/invocations", data=b"[1, 2]",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bad, timeout=30)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["type"] == "InvalidInput"


def test_json_lines_are_answered_line_by_line_on_both_routes(endpoint_url: str, client: Any) -> None:
    """What Batch Transform sends in MultiRecord mode: a bad line gets its own error, the others their labels."""
    body = "\n".join([json.dumps({"inputs": HEADLINES[0]}), "not json", json.dumps({"inputs": HEADLINES[1]})]) + "\n"
    request = urllib.request.Request(f"{endpoint_url}/invocations", data=body.encode(),
                                     headers={"Content-Type": "application/jsonlines",
                                              "Accept": "application/jsonlines"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"] == "application/jsonlines"
        container = [json.loads(line) for line in response.read().decode().split("\n")]
    assert [sorted(line) for line in container] == [
        ["label", "model_version", "scores"], ["error", "model_version"], ["label", "model_version", "scores"]]
    assert container[1]["error"]["message"].startswith("not valid JSON")
    runtime = invoke(client, body.encode(), ContentType="application/jsonlines", Accept="application/jsonlines")
    assert runtime["ContentType"] == "application/jsonlines"
    assert [json.loads(line) for line in runtime["Body"].read().decode().split("\n")] == container


@pytest.fixture
def batching_endpoint(tiny_onnx_model_dir: Path, tiny_model_dir: Path) -> Iterator[str]:
    """Batches of exactly 8 headlines (the wait is long enough never to fire first); two named endpoints."""
    with running_endpoint(tiny_onnx_model_dir, endpoints={"news-classifier-torch": tiny_model_dir},
                          args=["--max-batch", "8", "--max-wait-ms", "60000"]) as url:
        yield url


def test_concurrent_requests_share_one_batch_and_get_their_own_rows(batching_endpoint: str) -> None:
    client = runtime_client(batching_endpoint)
    headlines = [f"{h} on day {i}" for i, h in enumerate(HEADLINES * 3)][:8]
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda h: invoke(client, {"inputs": h}), headlines))
    batched = [json.loads(r["Body"].read())["predictions"][0] for r in responses]
    for response in responses:
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        assert (headers["x-micro-batch-headlines"], headers["x-micro-batch-requests"]) == ("8", "8")
    alone = json.loads(invoke(client, {"inputs": headlines})["Body"].read())["predictions"]
    for one, together in zip(batched, alone, strict=True):
        assert one["label"] == together["label"]
        assert one["scores"] == pytest.approx(together["scores"], abs=1e-4)


def test_named_endpoints_are_served_side_by_side(batching_endpoint: str) -> None:
    with urllib.request.urlopen(f"{batching_endpoint}/ping", timeout=10) as ping:
        served = json.loads(ping.read())["endpoints"]
    assert {name: e["runtime"] for name, e in served.items()} == {
        "news-classifier": "onnx-int8", "news-classifier-torch": "torch"}
    client = runtime_client(batching_endpoint)
    for name in ("news-classifier", "news-classifier-torch"):
        body = json.loads(invoke(client, {"inputs": HEADLINES[:1] * 8}, endpoint=name)["Body"].read())
        assert len(body["predictions"]) == 8
    with pytest.raises(client.exceptions.ValidationError):
        invoke(client, {"inputs": HEADLINES}, endpoint="news-classifier-b")


def test_request_not_answered_in_time_gets_model_error_504(tiny_onnx_model_dir: Path) -> None:
    with running_endpoint(tiny_onnx_model_dir, args=["--max-batch", "64", "--max-wait-ms", "60000",
                                                      "--timeout-s", "0.2"]) as url:
        client = runtime_client(url)
        with pytest.raises(client.exceptions.ModelError) as caught:
            invoke(client, {"inputs": HEADLINES})
        assert caught.value.response["OriginalStatusCode"] == 504


def waiting_requests(url: str) -> int:
    with urllib.request.urlopen(f"{url}/ping", timeout=10) as ping:
        return json.loads(ping.read())["endpoints"]["news-classifier"]["waiting_requests"]


def test_sigterm_finishes_the_request_in_flight_then_exits_cleanly(tiny_onnx_model_dir: Path,
                                                                     tmp_path: Path) -> None:
    """The request waits in a batch held open for ten minutes; the stop runs it at once and answers it."""
    log_path = tmp_path / "serve.log"
    command = serve_command(tiny_onnx_model_dir, "127.0.0.1", 0,
                            args=["--max-batch", "64", "--max-wait-ms", "600000"])
    with running_server(command, log_path=log_path) as server:
        result: dict[str, Any] = {}
        client = runtime_client(server.url)
        worker = threading.Thread(target=lambda: result.update(invoke(client, {"inputs": HEADLINES})))
        worker.start()
        wait_until(lambda: waiting_requests(server.url) == 1, time.monotonic() + 30, server.process)
        server.process.send_signal(signal.SIGTERM)
        worker.join(60)
        assert result["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert server.process.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after shutting down
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert "Application shutdown complete." in [line["message"] for line in lines]
    access = [line for line in lines if line["message"] == "request" and line["path"].startswith("/endpoints")]
    assert access[0]["status"] == 200
    assert {"request_id", "duration_ms", "batch_headlines"} <= set(access[0])


def test_port_zero_is_bound_by_the_server_and_named_in_its_log(tiny_model_dir: Path, tmp_path: Path) -> None:
    """No port is picked before the server binds it, so no other program can take it in between."""
    log_path = tmp_path / "serve.log"
    with running_endpoint(tiny_model_dir, log_path=log_path) as url:
        [listening] = [e for e in map(json.loads, log_path.read_text().splitlines()) if e["message"] == "listening"]
        assert listening["port"] > 0 and url == f"http://127.0.0.1:{listening['port']}"
        assert answers(f"{url}/ping")
