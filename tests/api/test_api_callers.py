"""Per-client provenance and reach: every transaction and every feedback names the key that sent it; a client reads
only its own transactions, operators (OPERATOR_KEY_IDS) read everyone's; feedback is first-wins."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client
from chalicelib import callers
from chalicelib.errors import ApiError
from chalicelib.routing import Client as RoutingClient
from chalicelib.validation import MAX_LISTED_NAMES

from tests.support.api_testing import OPERATOR, assert_documented, body_of, post_json


def _classify(api: Client, client_id: str, headline: str) -> str:
    response = post_json(api, "/classify", {"headline": headline}, headers={"X-Client-Id": client_id})
    assert response.status_code == 200
    return body_of(response)["request_id"]


@pytest.fixture
def keyed_api(keyed_client: Client, table: str, real_endpoint: str) -> Client:
    return keyed_client


def test_a_client_reads_only_its_own_transactions(keyed_api: Client, openapi: dict) -> None:
    alice = _classify(keyed_api, "alice", "Fed raises rates")
    bob = _classify(keyed_api, "bob", "Ebola outbreak spreads")
    listed = keyed_api.http.get("/transactions?limit=10", headers={"X-Client-Id": "alice"})
    assert_documented(openapi, "/transactions", "GET", listed)
    assert [t["request_id"] for t in body_of(listed)["transactions"]] == [alice]
    assert body_of(listed)["transactions"][0]["client_key_id"] == "alice"
    other = keyed_api.http.get(f"/transactions/{bob}", headers={"X-Client-Id": "alice"})
    assert (other.status_code, body_of(other)["error"]["code"]) == (404, "not_found")
    assert keyed_api.http.get(f"/transactions/{alice}", headers={"X-Client-Id": "alice"}).status_code == 200
    everyone = keyed_api.http.get("/transactions?limit=10", headers={"X-Client-Id": OPERATOR})
    assert {t["request_id"] for t in body_of(everyone)["transactions"]} == {alice, bob}
    assert keyed_api.http.get(f"/transactions/{bob}", headers={"X-Client-Id": OPERATOR}).status_code == 200


def test_a_caller_without_a_key_id_lists_nothing(keyed_api: Client, openapi: dict) -> None:
    response = keyed_api.http.get("/transactions")
    assert_documented(openapi, "/transactions", "GET", response)
    assert (response.status_code, body_of(response)["error"]["code"]) == (403, "forbidden")


def test_feedback_is_first_wins_and_names_its_sender(keyed_api: Client, openapi: dict) -> None:
    request_id = _classify(keyed_api, "alice", "Apple unveils new iPhone")
    path = f"/transactions/{request_id}/feedback"
    first = post_json(keyed_api, path, {"label": "Science"}, headers={"X-Client-Id": "alice"})
    assert first.status_code == 200
    assert (body_of(first)["feedback_label"], body_of(first)["feedback_by"]) == ("Science", "alice")
    again = post_json(keyed_api, path, {"label": "Business"}, headers={"X-Client-Id": OPERATOR})
    assert_documented(openapi, "/transactions/{request_id}/feedback", "POST", again)
    assert (again.status_code, body_of(again)["error"]["code"]) == (409, "feedback_exists")
    assert "Science" in body_of(again)["error"]["message"]
    stranger = post_json(keyed_api, path, {"label": "Business"}, headers={"X-Client-Id": "mallory"})
    assert stranger.status_code == 404
    stored = body_of(keyed_api.http.get(f"/transactions/{request_id}", headers={"X-Client-Id": "alice"}))
    assert (stored["feedback_label"], stored["feedback_by"]) == ("Science", "alice")


def test_a_refused_request_records_its_sender(keyed_api: Client) -> None:
    response = post_json(keyed_api, "/classify", {"headline": ""}, headers={"X-Client-Id": "alice"})
    [request_id] = body_of(response)["error"]["request_ids"]
    stored = keyed_api.http.get(f"/transactions/{request_id}", headers={"X-Client-Id": "alice"})
    assert body_of(stored)["client_key_id"] == "alice"


def test_on_aws_the_caller_is_the_key_api_gateway_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPERATOR_KEY_IDS", "k-ops")
    context = {"identity": {"apiKeyId": "k-alice", "apiKey": "secret"}}
    assert callers.caller(RoutingClient(client_id="k-ops"), context) == callers.Caller("k-alice", operator=False)
    assert callers.caller(RoutingClient(), {"identity": {"apiKeyId": "k-ops"}}).operator


def test_unknown_fields_are_named_a_few_at_a_time(api: Client) -> None:
    body = {"headline": "Oil falls", **{f"field_{n}_{'x' * 100}": n for n in range(50)}}
    response = api.http.post("/classify", body=json.dumps(body), headers={"Content-Type": "application/json"})
    message = body_of(response)["error"]["message"]
    assert response.status_code == 400
    assert f"and {50 - MAX_LISTED_NAMES} more" in message
    assert len(message) < 400


@pytest.mark.parametrize(("keyless", "in_lambda"), [(False, False), (True, True), (False, True)],
                         ids=["keyed stage", "keyless stage inside Lambda", "keyed stage inside Lambda"])
def test_x_client_id_is_no_identity_where_keys_are(monkeypatch: pytest.MonkeyPatch, keyless: bool,
                                                   in_lambda: bool) -> None:
    monkeypatch.setenv("API_KEY_REQUIRED", "false" if keyless else "true")
    if in_lambda:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "news-classifier-api-dev")
    else:
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.setenv("OPERATOR_KEY_IDS", "k-ops")
    with pytest.raises(ApiError) as refused:
        callers.caller(RoutingClient(client_id="k-ops"), {"identity": {"sourceIp": "127.0.0.1"}})
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    assert callers.caller(RoutingClient(client_id="k-ops"), {"identity": {"apiKeyId": "k-alice"}}).key_id == "k-alice"


def test_on_chalice_local_without_keys_x_client_id_stands_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY_REQUIRED", "false")
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.setenv("OPERATOR_KEY_IDS", "k-ops")
    assert callers.caller(RoutingClient(client_id="k-ops"), {}) == callers.Caller("k-ops", operator=True)
    assert callers.caller(RoutingClient(), {}) == callers.Caller(None, operator=False)


@pytest.fixture
def keys_required_api(tmp_path: Path, gateway_keys: dict[str, str], table: str,
                      real_endpoint: str) -> Iterator[Client]:
    """The app on a stage that requires keys (the local stage's wiring with API_KEY_REQUIRED=true and one operator
    key), with API Gateway's key check imitated: `alice-secret` is the key id k-alice, `ops-secret` is OPERATOR."""
    from app import app

    from devkit.stages import CHALICE_DIR

    shutil.copytree(CHALICE_DIR / ".chalice", tmp_path / ".chalice")
    config_file = tmp_path / ".chalice" / "config.json"
    config = json.loads(config_file.read_text())
    config["stages"]["local"]["environment_variables"].update(API_KEY_REQUIRED="true", OPERATOR_KEY_IDS=OPERATOR)
    config_file.write_text(json.dumps(config))
    gateway_keys.update({"alice-secret": "k-alice", "ops-secret": OPERATOR})
    with Client(app, stage_name="local", project_dir=str(tmp_path)) as test_client:
        yield test_client


def test_on_a_keyed_stage_a_request_without_a_key_id_is_refused_on_every_data_route(
        keys_required_api: Client, openapi: dict) -> None:
    api = keys_required_api
    alice = {"x-api-key": "alice-secret"}
    answer = post_json(api, "/classify", {"headline": "Fed raises rates"}, headers=alice)
    assert answer.status_code == 200
    request_id = body_of(answer)["request_id"]
    posing = {"X-Client-Id": OPERATOR}  # an operator's key id, in a header anyone can send
    refused = [
        ("/classify", "POST", post_json(api, "/classify", {"headline": "Oil falls"}, headers=posing)),
        ("/classify/batch", "POST", post_json(api, "/classify/batch", {"headlines": ["Oil falls"]}, headers=posing)),
        ("/transactions", "GET", api.http.get("/transactions", headers=posing)),
        ("/transactions/{request_id}", "GET", api.http.get(f"/transactions/{request_id}", headers=posing)),
        ("/transactions/{request_id}/feedback", "POST",
         post_json(api, f"/transactions/{request_id}/feedback", {"label": "Business"}, headers=posing)),
        ("/health/details", "GET", api.http.get("/health/details", headers=posing)),
    ]
    for route, method, response in refused:
        assert (response.status_code, body_of(response)["error"]["code"]) == (403, "forbidden"), route
        assert_documented(openapi, route, method, response)
    # The refused classifications are recorded like every refusal, under no key id; alice's record is untouched.
    for route, _, response in refused[:2]:
        [rejected_id] = body_of(response)["error"]["request_ids"]
        record = body_of(api.http.get(f"/transactions/{rejected_id}", headers={"x-api-key": "ops-secret"}))
        assert (record["status"], record["error_code"], record.get("client_key_id")) == ("rejected", "forbidden",
                                                                                           None), route
    stored = body_of(api.http.get(f"/transactions/{request_id}", headers=alice))
    assert (stored["client_key_id"], stored.get("feedback_label")) == ("k-alice", None)
    # With its key, the header changes nothing about who the caller is.
    assert api.http.get("/health/details", headers={**alice, **posing}).status_code == 403
    assert api.http.get("/health/details", headers={"x-api-key": "ops-secret"}).status_code == 200
