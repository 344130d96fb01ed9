"""The deployed REST API's stage on API Gateway, then its smoke tests: the stage bound to the infra stack's usage plan
(so that keys are enforced), throttled and access-logged, one real request with the key, and data requests without
one, which must be refused.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chalice_app.ops.aws_stage import DeployError
from devkit.plan import Call

SMOKE_HEADLINE = "Stocks rally as the central bank holds interest rates"
SMOKE_TIMEOUT_S = 120.0  # API Gateway takes a little while to enforce a freshly bound usage plan
REFUSED = (401, 403)  # API Gateway's answer to a keyed method without a key, and the API's to a caller without one
# Data routes asked without a key: what one must send to classify, and to read others' records.
KEYLESS_REQUESTS = (("POST", "/classify", {"headline": SMOKE_HEADLINE}), ("GET", "/transactions", None))
Fetch = Callable[[str, bytes | None, dict[str, str]], tuple[int, Any]]


def bind_usage_plan(apigateway: Any, plan_id: str, rest_api_id: str, api_stage: str) -> list[dict[str, str]]:
    """Add the REST API stage to the usage plan (once), removing stages of REST APIs that are gone."""
    wanted = f"{rest_api_id}:{api_stage}"
    bound = [f"{s['apiId']}:{s['stage']}" for s in apigateway.get_usage_plan(usagePlanId=plan_id).get("apiStages", [])]
    operations = [{"op": "remove", "path": "/apiStages", "value": value} for value in bound
                  if value != wanted and not _rest_api_exists(apigateway, value.split(":")[0])]
    if wanted not in bound:
        operations.append({"op": "add", "path": "/apiStages", "value": wanted})
    if operations:
        apigateway.update_usage_plan(usagePlanId=plan_id, patchOperations=operations)
    return operations


def _rest_api_exists(apigateway: Any, rest_api_id: str) -> bool:
    try:
        apigateway.get_rest_api(restApiId=rest_api_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NotFoundException":
            return False
        raise
    return True


def usage_plan_calls(api_stage: str) -> list[Call]:
    """The calls of `bind_usage_plan`, with the values only a run knows as placeholders."""
    plan = {"usagePlanId": "<UsagePlanId output>"}
    add = [{"op": "add", "path": "/apiStages", "value": f"<rest_api_id>:{api_stage}"}]
    return [Call("apigateway", "get_usage_plan", plan),
            Call("apigateway", "get_rest_api", {"restApiId": "<rest_api_id>"},
                 "of each other REST API bound: is it still there?"),
            Call("apigateway", "update_usage_plan", {**plan, "patchOperations": add},
                 "adding the REST API stage (and removing stages of REST APIs that are gone)")]


# $context variables of API Gateway's access log: who (the key id, never the key), what, and how it ended.
ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId", "apiKeyId": "$context.identity.apiKeyId", "time": "$context.requestTime",
    "method": "$context.httpMethod", "path": "$context.resourcePath", "status": "$context.status",
    "latencyMs": "$context.responseLatency", "error": "$context.error.message"}, separators=(",", ":"))


def stage_settings(outputs: dict[str, str]) -> list[dict[str, str]]:
    """The stage's throttle for every method, keyed or not, and its access log (the infra stack's log group)."""
    return [
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(outputs["StageRateLimit"])},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(outputs["StageBurstLimit"])},
        {"op": "replace", "path": "/accessLogSettings/destinationArn",
         "value": outputs["ApiAccessLogGroupArn"].removesuffix(":*")},
        {"op": "replace", "path": "/accessLogSettings/format", "value": ACCESS_LOG_FORMAT},
    ]


def protect_stage(apigateway: Any, rest_api_id: str, api_stage: str, outputs: dict[str, str]) -> None:
    """Anonymous traffic (/health, the console) cannot starve classification: the usage plans throttle each key,
    this throttles the whole stage; the access log makes every read attributable to a key id."""
    apigateway.update_stage(restApiId=rest_api_id, stageName=api_stage, patchOperations=stage_settings(outputs))


def stage_calls(api_stage: str) -> list[Call]:
    """The call of `protect_stage`, with the infra stack's outputs as placeholders."""
    outputs = {name: f"<{name} output>" for name in ("StageRateLimit", "StageBurstLimit", "ApiAccessLogGroupArn")}
    return [Call("apigateway", "update_stage", {"restApiId": "<rest_api_id>", "stageName": api_stage,
                                                "patchOperations": stage_settings(outputs)},
                 "(the stage's throttle and access log)")]


def fetch_json(url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except ValueError:
            return error.code, None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 0, str(exc)


def _ask(fetch: Fetch, url: str, body: bytes | None, headers: dict[str, str], again: Callable[[int], bool],
         deadline: float, sleep: Callable[[float], None]) -> tuple[int, Any]:
    """One request, repeated with a growing pause while `again(status)` holds and the deadline allows; the last
    answer."""
    delay = 2.0
    status, answer = fetch(url, body, headers)
    while again(status) and time.monotonic() + delay <= deadline:
        sleep(delay)
        delay = min(delay * 2, 15.0)
        status, answer = fetch(url, body, headers)
    return status, answer


def smoke_test(url: str, key: str, fetch: Fetch = fetch_json, timeout_s: float = SMOKE_TIMEOUT_S,
               sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """GET /health, then one POST /classify with the key; retried until `timeout_s` (a fresh deployment, a fresh
    binding). Returns the classification."""
    base = url.rstrip("/")
    deadline = time.monotonic() + timeout_s
    checks = [("GET /health", f"{base}/health", None, {}),
              ("POST /classify", f"{base}/classify", json.dumps({"headline": SMOKE_HEADLINE}).encode(),
               {"Content-Type": "application/json", "x-api-key": key})]
    answer: Any = None
    for name, target, body, headers in checks:
        status, answer = _ask(fetch, target, body, headers, lambda status: status != 200, deadline, sleep)
        if status != 200:
            raise DeployError(f"smoke test: {name} answered {status or 'nothing'}: {answer}")
    if not isinstance(answer, dict) or "label" not in answer:
        raise DeployError(f"smoke test: POST /classify answered without a label: {answer}")
    return answer


def smoke_calls(timeout_s: float) -> list[Call]:
    """The requests of `smoke_test`."""
    return [Call("http", "GET", "<url>/health", f"until it answers 200 (for up to {timeout_s:.0f} s in all)"),
            Call("http", "POST", {"url": "<url>/classify", "headers": {"x-api-key": "<the key's value>"},
                                  "body": {"headline": SMOKE_HEADLINE}}, "until it answers 200 with a label")]


def _transient(status: int) -> bool:
    """No answer, throttled, or the gateway's own trouble: neither a refusal nor a served request, so ask again."""
    return status in (0, 429) or status >= 500


def keyless_test(url: str, takedown: str, fetch: Fetch = fetch_json, timeout_s: float = SMOKE_TIMEOUT_S,
                 sleep: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """The negative smoke test: each of KEYLESS_REQUESTS without a key must be refused (401/403). Any other answer
    means the stage serves data to anyone, whatever the guard read in the config: the deployment fails, saying
    so and what to do (`takedown`: the command that removes the API). Returns each request's status."""
    base, deadline = url.rstrip("/"), time.monotonic() + timeout_s
    statuses = {}
    for method, path, body in KEYLESS_REQUESTS:
        name = f"{method} {path}"
        data = None if body is None else json.dumps(body).encode()
        headers = {} if body is None else {"Content-Type": "application/json"}
        status, answer = _ask(fetch, f"{base}{path}", data, headers, _transient, deadline, sleep)
        if _transient(status):
            raise DeployError(f"negative smoke test: {name} without an API key answered {status or 'nothing'} "
                              f"({answer}), not 401/403, so nothing shows that {base} refuses callers without a key; "
                              f"try `curl -i -X {method} {base}{path}` (expect 403) before trusting the stage")
        if status not in REFUSED:
            raise DeployError(
                f"THE STAGE IS OPEN: {name} without an API key answered {status} at {base} ({str(answer)[:200]}); "
                f"every data route must refuse a request without a key (403). Take the API down now: {takedown} "
                "(the table and the infra stack stay). Then find what opened it: API_KEY_REQUIRED (never false) and "
                "OPERATOR_KEY_IDS (never *) of every function in chalice_app/.chalice/config.json, api_key_required "
                "on the data routes of chalice_app/app.py; fix it and deploy again")
        statuses[name] = status
    return statuses


def keyless_calls() -> list[Call]:
    """The requests of `keyless_test`."""
    return [Call("http", method, {"url": f"<url>{path}", **({"body": body} if body else {})},
                 "without a key: must answer 401/403, else the deployment fails (the stage would be open)")
            for method, path, body in KEYLESS_REQUESTS]
