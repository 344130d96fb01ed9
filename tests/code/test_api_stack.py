"""The packaged API stack (`chalice package --merge-template`, built once per session as `make deploy` builds it):
a small Lambda zip, a template cfn-lint accepts, and a transaction table that the API's own code can use when
moto's CloudFormation creates it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from chalice_app.ops.deploy import Stage, package_api
from chalice_app.ops.stages import CHALICE_DIR

STAGES = ["dev", "prod"]
MAX_ZIP_BYTES = 10 * 1024 * 1024
HEAVY = ("torch/", "transformers/", "sagemaker/", "botocore/", "numpy/", "onnxruntime/")
KEYED_ROUTES = ["/classify", "/classify/batch", "/transactions", "/transactions/{request_id}",
                "/transactions/{request_id}/feedback"]
OPEN_ROUTES = ["/health", "/", "/console/{name}"]  # the console asks for the key itself


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both AWS stages packaged by chalice_app.ops.deploy's own step (a clean project copy, PIP_NO_DEPS)."""
    root = tmp_path_factory.mktemp("api-packages")
    return {stage: package_api(Stage.load(stage), root / stage, "us-east-1").parent for stage in STAGES}


def template(packages: dict[str, Path], stage: str) -> dict[str, Any]:
    return yaml.safe_load((packages[stage] / "sam.yaml").read_text())


@pytest.mark.parametrize("stage", STAGES)
def test_lambda_zip_is_small_and_holds_only_the_api(packages: dict[str, Path], stage: str) -> None:
    archive = packages[stage] / "deployment.zip"
    assert archive.stat().st_size <= MAX_ZIP_BYTES
    names = zipfile.ZipFile(archive).namelist()
    assert not [name for name in names if name.startswith(HEAVY)]
    assert {"app.py", "chalicelib/transactions.py", "pynamodb/models.py", "aws_lambda_powertools/__init__.py",
            "typing_extensions.py", "chalicelib/console/index.html", "chalicelib/console/console.css",
            "chalicelib/console/console.js"} <= set(names)
    assert not [name for name in names if name.startswith(("model/", "training_jobs/", "tests/"))]


@pytest.mark.parametrize("stage", STAGES)
def test_packaged_template_passes_cfn_lint(packages: dict[str, Path], stage: str) -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable",
                             str(packages[stage] / "sam.yaml")], capture_output=True, text=True)
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert not errors, result.stdout


@pytest.mark.parametrize("stage", STAGES)
def test_template_wires_the_function_to_the_stage_and_its_own_policy(packages: dict[str, Path], stage: str) -> None:
    resources = template(packages, stage)["Resources"]
    assert resources["RestAPI"]["Properties"]["EndpointConfiguration"] == "REGIONAL"
    function = resources["APIHandler"]["Properties"]
    assert function["Timeout"] < 29
    assert function["Environment"]["Variables"] == Stage.load(stage).environment
    (role_policy,) = resources["ApiHandlerRole"]["Properties"]["Policies"]
    policy_file = CHALICE_DIR / ".chalice" / f"policy-{stage}.json"
    assert role_policy["PolicyDocument"] == json.loads(policy_file.read_text())
    assert resources["ApiHandlerLogGroup"]["Properties"]["RetentionInDays"] > 0


@pytest.mark.parametrize("stage", STAGES)
def test_api_key_is_required_on_every_route_but_health_and_the_console(packages: dict[str, Path], stage: str) -> None:
    paths = template(packages, stage)["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for route in KEYED_ROUTES:
        for operation in (op for method, op in paths[route].items() if method != "parameters"):
            assert operation["security"] == [{"api_key": []}], route
    for route in OPEN_ROUTES:
        assert "security" not in paths[route]["get"], route
    plan = template(packages, stage)["Resources"]["UsagePlan"]["Properties"]
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}]
    assert set(plan["Throttle"]) == {"RateLimit", "BurstLimit"} and plan["Quota"]["Period"] == "DAY"


def test_alarms_watch_the_metrics_the_api_emits(packages: dict[str, Path]) -> None:
    """Names from chalicelib/telemetry.py: Powertools metrics with dimensions service + route (+ code)."""
    resources = template(packages, "dev")["Resources"]
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {"ServerErrorRateAlarm", "LatencyP95Alarm", "ModelErrorsAlarm", "ThrottlesAlarm",
                           "UnsavedTransactionsAlarm", "DriftAlarm"}  # DriftAlarm: tests/code/test_drift_stack.py
    own = [m["MetricStat"]["Metric"] for a in alarms.values() for m in a.get("Metrics", []) if "MetricStat" in m
           and m["MetricStat"]["Metric"]["Namespace"] == {"Ref": "MetricsNamespace"}]
    assert {m["MetricName"] for m in own} == {"Errors", "UnsavedTransactions"}
    for metric in own:
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dimensions["service"] == {"Ref": "ServiceName"}
        assert dimensions["route"] in ("/classify", "/classify/batch")
        if metric["MetricName"] == "Errors":
            assert dimensions["code"] in ("model_error", "model_timeout", "model_throttled")
    assert alarms["LatencyP95Alarm"]["ExtendedStatistic"] == "p95"
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms.values())


def test_stack_table_on_moto_serves_the_api_code(packages: dict[str, Path], moto_url: str, aws_credentials: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's CloudFormation has no SAM transform: the table resource alone is created, exactly as packaged."""
    import datetime as dt

    from chalicelib import transactions

    packaged = template(packages, "dev")
    table_only = {"Parameters": {"TableName": packaged["Parameters"]["TableName"]},
                  "Resources": {"TransactionsTable": packaged["Resources"]["TransactionsTable"]}}
    parameters = Stage.load("dev").parameters("news-artifacts")
    session = boto3.Session(region_name="us-east-1")
    session.client("cloudformation", endpoint_url=moto_url).create_stack(
        StackName="news-classifier-api-dev", TemplateBody=json.dumps(table_only),
        Parameters=[{"ParameterKey": "TableName", "ParameterValue": parameters["TableName"]}])
    dynamodb = session.client("dynamodb", endpoint_url=moto_url)
    described = dynamodb.describe_table(TableName=parameters["TableName"])["Table"]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    properties = packaged["Resources"]["TransactionsTable"]["Properties"]  # moto's CloudFormation ignores these
    assert properties["TimeToLiveSpecification"] == {"AttributeName": transactions.TransactionRecord.expires_at
                                                     .attr_name, "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}

    for name, value in Stage.load("dev").environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    created_at = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    outcome = transactions.Outcome(request_id=transactions.new_request_id(), headline="Markets rally",
                                   latency_ms=12.0, label="Business", scores={"Business": 1.0}, model_version="v1")
    assert transactions.save([transactions.build_record(outcome, created_at, "news-classifier-dev", None)])
    model = transactions.transaction_model()
    assert transactions.find(outcome.request_id).label == "Business"
    assert [r.request_id for r in model.day_index.query("2025-01-02")] == [outcome.request_id]
