"""`chalice deploy` as a person runs it, against moto's server (which checks IAM policy syntax as AWS does): the
infra stack first (`make infra`), then `cd chalice_app && chalice deploy --stage dev` in a subprocess, the usage
plan bound to the new REST API stage, the API's own PynamoDB code on the stack's table, then `chalice delete`
and the infra stack's deletion. moto lacks a few things Chalice and the stack need: tests/support/moto_aws.py
adds them."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalice_app.ops import infra
from chalice_app.ops.api_gateway import bind_usage_plan
from chalice_app.ops.chalice_deploy import deployed_rest_api
from chalice_app.ops.stages import (
    API_HANDLER,
    CHALICE_DIR,
    DRIFT_HANDLER,
    function_environment,
    function_name,
    stage_config,
)

STAGE = "dev"
CHALICE_BIN = Path(sys.executable).with_name("chalice")
KEYED = {("/classify", "POST"), ("/classify/batch", "POST"), ("/transactions", "GET"),
         ("/transactions/{request_id}", "GET"), ("/transactions/{request_id}/feedback", "POST"),
         ("/health/details", "GET"), ("/review", "GET"), ("/review/labels", "POST")}
OPEN = {("/health", "GET"), ("/", "GET"), ("/console/{name}", "GET")}  # the console asks for the key itself
PIP_CONF = "[download]\nno-deps = true\n"  # what `make setup` writes into .venv/pip.conf


def project_copy(tmp_path: Path) -> Path:
    """The Chalice project as a clone has it (no deployments, no deployed records)."""
    return Path(shutil.copytree(CHALICE_DIR, tmp_path / "chalice_app", ignore=shutil.ignore_patterns(
        "deployments", "deployed", "__pycache__", "ops", "local", "reports")))


def chalice(project: Path, moto_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text(PIP_CONF)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "PIP_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=moto_url, PIP_CONFIG_FILE=str(pip_conf))
    return subprocess.run([str(CHALICE_BIN), *args, "--stage", STAGE], cwd=project, env=env, capture_output=True,
                          text=True, timeout=600)


def clients(moto_url: str) -> dict[str, Any]:
    session = boto3.Session(region_name="us-east-1")
    return {name: session.client(name, endpoint_url=moto_url)
            for name in ("cloudformation", "apigateway", "iam", "lambda", "dynamodb", "ecr")}


def role_policy(iam: Any, handler: str) -> dict[str, Any]:
    role = f"{function_name(STAGE)}-{handler}"
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    return iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]


def methods(apigateway: Any, rest_api_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for resource in apigateway.get_resources(restApiId=rest_api_id, limit=500)["items"]:
        for method in resource.get("resourceMethods", {}):
            found[(resource["path"], method)] = apigateway.get_method(restApiId=rest_api_id,
                                                                      resourceId=resource["id"], httpMethod=method)
    return found


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Tried to parse AWS.{2}CloudWatch.{2}Alarm")  # moto has no alarms in CloudFormation
def test_infra_then_chalice_deploy_then_delete(moto_url: str, aws_credentials: None, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    aws = clients(moto_url)
    outputs = infra.deploy(aws["cloudformation"], STAGE, poll_seconds=0.1)
    environment = function_environment(STAGE, API_HANDLER)
    table = aws["dynamodb"].describe_table(TableName=environment["TABLE_NAME"])["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        "day-created_at-index", "client-created_at-index", "review_day-review_margin-index"}
    assert outputs["RepositoryUri"].endswith(f"/{infra.repository_name(STAGE)}")
    assert aws["apigateway"].get_api_key(apiKey=outputs["ApiKeyId"])["enabled"]

    project = project_copy(tmp_path)
    deployed = chalice(project, moto_url, tmp_path, "deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    # The roles hold the policy files as they are; the functions have the stage's variables.
    for handler, policy_file in ((API_HANDLER, "policy-dev.json"), (DRIFT_HANDLER, "policy-drift-dev.json")):
        assert role_policy(aws["iam"], handler) == json.loads((CHALICE_DIR / ".chalice" / policy_file).read_text())
        configuration = aws["lambda"].get_function_configuration(FunctionName=function_name(STAGE, handler))
        assert configuration["Environment"]["Variables"] == function_environment(STAGE, handler)
        reserved = aws["lambda"].get_function_concurrency(FunctionName=function_name(STAGE, handler))
        assert reserved["ReservedConcurrentExecutions"] == stage_config(STAGE)["lambda_functions"][handler][
            "reserved_concurrency"]  # neither function can take the other's concurrency
    # Every route, and the key required on exactly the data routes.
    rest_api_id, url = deployed_rest_api(STAGE, project / ".chalice" / "deployed")
    assert url == f"https://{rest_api_id}.execute-api.us-east-1.amazonaws.com/{STAGE}/"
    found = methods(aws["apigateway"], rest_api_id)
    assert set(found) >= KEYED | OPEN
    assert {route for route, method in found.items() if method.get("apiKeyRequired")} == KEYED

    # The binding: the usage plan now covers the new stage, once.
    plan = outputs["UsagePlanId"]
    assert bind_usage_plan(aws["apigateway"], plan, rest_api_id, STAGE) == [
        {"op": "add", "path": "/apiStages", "value": f"{rest_api_id}:{STAGE}"}]
    assert bind_usage_plan(aws["apigateway"], plan, rest_api_id, STAGE) == []
    stages = aws["apigateway"].get_usage_plan(usagePlanId=plan)["apiStages"]
    assert [(s["apiId"], s["stage"]) for s in stages] == [(rest_api_id, STAGE)]

    # The API's own code writes to and reads from the stack's table.
    from chalicelib import transactions

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    created_at = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    outcome = transactions.Outcome(request_id=transactions.new_request_id(), headline="Markets rally",
                                   latency_ms=12.0, label="Business", scores={"Business": 1.0}, model_version="v1")
    assert transactions.save([transactions.build_record(outcome, created_at, environment["ENDPOINT_NAME"], None)])
    assert transactions.find(outcome.request_id).label == "Business"
    model = transactions.transaction_model()
    assert [r.request_id for r in model.day_index.query("2025-01-02")] == [outcome.request_id]

    deleted = chalice(project, moto_url, tmp_path, "delete")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    for handler in (API_HANDLER, DRIFT_HANDLER):
        with pytest.raises(ClientError, match="ResourceNotFound"):
            aws["lambda"].get_function(FunctionName=function_name(STAGE, handler))
    assert infra.delete(aws["cloudformation"], aws["apigateway"], STAGE, poll_seconds=0.1)
    assert aws["apigateway"].get_usage_plan(usagePlanId=plan)["apiStages"] == []  # unbound before the deletion


def test_make_setup_writes_the_pip_configuration_the_test_uses() -> None:
    """Plain `chalice deploy` in the project's venv downloads no dependencies: botocore stays out of the zip."""
    makefile = (CHALICE_DIR.parent / "Makefile").read_text()
    assert "printf '[download]\\nno-deps = true\\n' > $(VENV)/pip.conf" in makefile
