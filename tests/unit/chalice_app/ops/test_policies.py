"""The IAM policies kept equal to the AWS calls the code makes: the API's routes and the drift job run under
Chalice's test client with the `dev` stage's own variables, against moto (table, S3 baselines) and the local
endpoint serving the tiny model as the stage's endpoint. Every request botocore sends is recorded and turned into
the IAM action, resource and DynamoDB condition keys AWS would authorise; the stage's policy files must allow each
one, conditions included, and every action they grant must have been used (nothing more than the code needs)."""

from __future__ import annotations

import fnmatch
import json
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from chalice.test import Client
from chalicelib import transactions

from chalice_app.ops.stages import (
    CHALICE_DIR,
    DRIFT_HANDLER,
    baseline_location,
    function_environment,
    read_config,
    stage_config,
)
from model.tools.local_endpoint import running_endpoint

STAGE = "dev"
REGION, ACCOUNT = "us-east-1", "123456789012"
TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                    "ConditionCheck": "ConditionCheckItem"}  # IAM authorises each item of a TransactWriteItems
LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}  # the Lambda runtime's log delivery, not the code's
WRITES = {"PutItem", "UpdateItem"}  # the writes whose condition keys the policies restrict


@dataclass(frozen=True)
class IamRequest:
    """What IAM authorises for one action of a call: the action, the resource and the DynamoDB condition keys."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()  # condition key -> its values, for set operators

    @property
    def keys(self) -> dict[str, tuple[str, ...]]:
        return dict(self.context)


def write_context(operation: str, request: Mapping[str, Any], standalone: bool) -> tuple:
    """The condition keys of a DynamoDB write as AWS's fine-grained access control documents them: `Attributes`,
    the attribute names the request touches (its key or item, its expressions' names); `ReturnValues`, which
    a standalone PutItem or UpdateItem always has (NONE unless asked), an item of a transaction does not."""
    attributes = {*request.get("Key", {}), *request.get("Item", {}), *request.get("AttributeUpdates", {}),
                  *request.get("ExpressionAttributeNames", {}).values()}
    context = [("dynamodb:Attributes", tuple(sorted(attributes)))] if attributes else []
    if standalone:
        context.append(("dynamodb:ReturnValues", (request.get("ReturnValues", "NONE"),)))
    return tuple(context) if operation in WRITES else ()


def iam_requests(service: str, operation: str, params: dict[str, Any]) -> list[IamRequest]:
    """The IAM requests of one API call, as AWS authorises it."""
    def table(name: str, index: str | None = None) -> str:
        arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        return f"{arn}/index/{index}" if index else arn

    if service == "dynamodb" and operation == "TransactWriteItems":
        return [IamRequest(f"dynamodb:{TRANSACT_ACTIONS[kind]}", table(request["TableName"]),
                           write_context(TRANSACT_ACTIONS[kind], request, standalone=False))
                for item in params["TransactItems"] for kind, request in item.items()]
    if service == "dynamodb":
        return [IamRequest(f"dynamodb:{operation}", table(params["TableName"], params.get("IndexName")),
                           write_context(operation, params, standalone=True))]
    if service == "sagemaker" and operation == "InvokeEndpoint":
        return [IamRequest("sagemaker:InvokeEndpoint",
                           f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{params['EndpointName'].lower()}")]
    if service == "s3" and operation == "GetObject":
        return [IamRequest("s3:GetObject", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]
    raise AssertionError(f"no IAM mapping for {service}:{operation}: add one, and grant it if the code needs it")


def condition_holds(operator: str, key: str, wanted: str | list[str], request: IamRequest) -> bool:
    """One condition operator on one key, as IAM evaluates it (the operators the policies use)."""
    values, allowed_values = request.keys.get(key), {wanted} if isinstance(wanted, str) else set(wanted)
    if operator == "ForAllValues:StringEquals":  # true for a request without the key: hence the Null guard
        return set(values or ()) <= allowed_values
    if operator == "Null":
        return (values is None) == (wanted == "true")
    if operator == "StringEqualsIfExists":
        return values is None or (len(values) == 1 and values[0] in allowed_values)
    if operator == "StringEquals":
        return values is not None and len(values) == 1 and values[0] in allowed_values
    raise AssertionError(f"the test does not evaluate {operator}: teach it before the policies use it")


def conditions_hold(statement: dict[str, Any], request: IamRequest) -> bool:
    return all(condition_holds(operator, key, wanted, request)
               for operator, keys in statement.get("Condition", {}).items() for key, wanted in keys.items())


class CallRecorder:
    """Every botocore request of this process, under the name of the function that sent it."""

    def __init__(self) -> None:
        self.function: str | None = None
        self.calls: dict[str, list[IamRequest]] = {}
        self.updated_attributes: set[str] = set()  # every attribute an UpdateItem names (IAM dynamodb:Attributes)

    @contextmanager
    def running(self, function: str) -> Iterator[None]:
        self.function = function
        try:
            yield
        finally:
            self.function = None

    def record(self, client: BaseClient, operation: str, params: dict[str, Any]) -> None:
        if self.function is not None:
            service = client.meta.service_model.signing_name
            self.calls.setdefault(self.function, []).extend(iam_requests(service, operation, params))
            if operation == "UpdateItem":
                self.updated_attributes |= {*params["Key"], *params.get("ExpressionAttributeNames", {}).values()}


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> CallRecorder:
    recorder = CallRecorder()
    make_api_call = BaseClient._make_api_call

    def recording(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        recorder.record(self, operation_name, api_params)
        return make_api_call(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return recorder


@pytest.fixture(scope="module")
def stage_endpoint(tiny_model_dir: Path) -> Iterator[str]:
    """The tiny model served under the dev stage's endpoint name."""
    name = function_environment(STAGE, "api_handler")["ENDPOINT_NAME"]
    with running_endpoint(tiny_model_dir, endpoint_name=name) as url:
        yield url


@pytest.fixture
def dev_stage(moto_url: str, aws_credentials: None, stage_endpoint: str, tiny_model_dir: Path,
              monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The dev stage's table on moto and its baseline bucket holding the tiny model's baseline."""
    for name, value in function_environment(STAGE, "api_handler").items():
        monkeypatch.setenv(name, value)  # the fixtures' own calls below use the stage's names too
    for variable in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.setenv(variable, moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", stage_endpoint)
    monkeypatch.setenv("DRIFT_MIN_SAMPLES", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    transactions.create_table()
    bucket, prefix = baseline_location(STAGE)
    s3 = boto3.client("s3", endpoint_url=moto_url)
    s3.create_bucket(Bucket=bucket)
    baseline = (tiny_model_dir / "drift_baseline.json").read_bytes()
    return {"bucket": bucket, "prefix": prefix, "baseline": baseline.decode()}


def with_operator(tmp_path: Path, key_id: str) -> Path:
    """A copy of the Chalice project's config whose dev stage names one operator key."""
    shutil.copytree(CHALICE_DIR / ".chalice", tmp_path / ".chalice")
    config = json.loads((tmp_path / ".chalice" / "config.json").read_text())
    config["stages"][STAGE]["environment_variables"]["OPERATOR_KEY_IDS"] = key_id
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_the_api_may_update_the_feedback_attributes_only(dev_stage: dict[str, str], recorder: CallRecorder,
                                                        gateway_keys: dict[str, str]) -> None:
    from app import app

    gateway_keys["alice-secret"] = "k-alice"
    with Client(app, stage_name=STAGE, project_dir=str(CHALICE_DIR)) as client, recorder.running("api_handler"):
        headers = {"Content-Type": "application/json", "x-api-key": "alice-secret"}
        answer = json.loads(client.http.post("/classify", headers=headers, body=json.dumps({"headline": "Oil"})).body)
        client.http.post(f"/transactions/{answer['request_id']}/feedback", headers=headers,
                         body=json.dumps({"label": answer["label"]}))
    [update] = [s for s in policy_statements("api_handler") if s["Action"] == "dynamodb:UpdateItem"]
    permitted = set(update["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    assert recorder.updated_attributes and recorder.updated_attributes <= permitted
    assert "label" not in permitted and "scores" not in permitted  # a recorded answer cannot be rewritten


def policy_statements(handler: str) -> list[dict[str, Any]]:
    config = stage_config(STAGE)
    name = config["iam_policy_file"] if handler == "api_handler" else \
        config["lambda_functions"][handler]["iam_policy_file"]
    return json.loads((CHALICE_DIR / ".chalice" / name).read_text())["Statement"]


def allowed(statements: list[dict[str, Any]], request: IamRequest) -> bool:
    def as_list(value: str | list[str]) -> list[str]:
        return [value] if isinstance(value, str) else value

    return any(request.action in as_list(s["Action"]) and conditions_hold(s, request)
               and any(fnmatch.fnmatchcase(request.resource, pattern) for pattern in as_list(s["Resource"]))
               for s in statements)


def granted_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def test_each_function_may_make_exactly_the_calls_its_code_makes(dev_stage: dict[str, str], recorder: CallRecorder,
                                                                 tmp_path: Path, gateway_keys: dict[str, str]) -> None:
    from app import app

    gateway_keys.update({"alice-secret": "k-alice", "ops-secret": "ops-key"})
    operator_project = with_operator(tmp_path, "ops-key")
    with Client(app, stage_name=STAGE, project_dir=str(operator_project)) as client, recorder.running("api_handler"):
        headers = {"Content-Type": "application/json", "x-api-key": "alice-secret"}
        answer = json.loads(client.http.post("/classify", headers=headers,
                                             body=json.dumps({"headline": "Stocks rally on rate hopes"})).body)
        assert "label" in answer, answer
        batch = client.http.post("/classify/batch", headers=headers, body=json.dumps({"headlines": ["a b", "c d"]}))
        assert batch.status_code == 200
        request_id = answer["request_id"]
        assert client.http.get(f"/transactions/{request_id}", headers=headers).status_code == 200
        feedback = client.http.post(f"/transactions/{request_id}/feedback", headers=headers,
                                    body=json.dumps({"label": answer["label"]}))
        assert feedback.status_code == 200
        assert client.http.get("/transactions?limit=5", headers=headers).status_code == 200  # the client's own
        assert client.http.get("/transactions?limit=5", headers={"x-api-key": "ops-secret"}).status_code == 200
        operator = {"Content-Type": "application/json", "x-api-key": "ops-secret"}
        queue = json.loads(client.http.get("/review", headers=operator).body)["entries"]
        first = json.loads(batch.body)["results"][0]
        labels = client.http.post("/review/labels", headers=operator,
                                  body=json.dumps({"label": first["label"], "request_ids": [first["request_id"]]}))
        assert labels.status_code == 200 and isinstance(queue, list)
        assert client.http.get("/health").status_code == 200

    version = answer["model_version"]
    boto3.client("s3").put_object(Bucket=dev_stage["bucket"], Body=dev_stage["baseline"].encode(),
                                  Key=f"{dev_stage['prefix']}/{version}/drift_baseline.json")
    with Client(app, stage_name=STAGE, project_dir=str(CHALICE_DIR)) as client, recorder.running(DRIFT_HANDLER):
        event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                                resources=[f"arn:aws:events:{REGION}:{ACCOUNT}:rule/drift"])
        result = client.lambda_.invoke(DRIFT_HANDLER, event).payload
        assert not result.get("skipped"), result  # the baseline was found and read

    for handler in ("api_handler", DRIFT_HANDLER):
        statements, calls = policy_statements(handler), recorder.calls[handler]
        refused = sorted({call for call in calls if not allowed(statements, call)}, key=repr)
        assert not refused, f"{handler} makes calls its policy does not allow: {refused}"
        unused = granted_actions(statements) - LOG_ACTIONS - {call.action for call in calls}
        assert not unused, f"{handler}'s policy grants what its code never does: {unused}"
        (logs,) = [s for s in statements if set(s["Action"]) == LOG_ACTIONS]
        assert logs["Resource"].endswith(f":log-group:/aws/lambda/{read_config()['app_name']}-{STAGE}"
                                         f"{'' if handler == 'api_handler' else '-' + handler}:*")


def test_the_feedback_grant_refuses_every_other_update() -> None:
    """What the API's role could do with UpdateItem if its code did it: only a feedback write that asks for
    nothing back passes; naming another attribute, naming none, or reading the whole item back does not."""
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{function_environment(STAGE, 'api_handler')['TABLE_NAME']}"
    statements = policy_statements("api_handler")

    def update(attributes: tuple[str, ...], return_values: str = "NONE") -> IamRequest:
        return IamRequest("dynamodb:UpdateItem", table, write_context("UpdateItem", {
            "Key": {"request_id": {"S": "x"}} if attributes else {}, "ReturnValues": return_values,
            "ExpressionAttributeNames": {f"#{n}": name for n, name in enumerate(attributes[1:])}}, standalone=True))

    feedback = ("request_id", "feedback_label", "feedback_at", "feedback_by", "feedback_source", "review_day",
                "review_margin")
    assert allowed(statements, update(feedback))
    assert not allowed(statements, update(("request_id", "label")))  # the model's answer stays as recorded
    assert not allowed(statements, update(("request_id", "feedback_label", "status")))
    for whole_item in ("ALL_NEW", "ALL_OLD"):
        assert not allowed(statements, update(feedback, whole_item))
    assert not allowed(statements, update(()))  # a request that names no attribute: the Null guard
