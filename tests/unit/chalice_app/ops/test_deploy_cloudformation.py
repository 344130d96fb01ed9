"""The API as `chalice package` builds it for the CloudFormation path (built once per session as
`python -m chalice_app.ops.deploy --via cloudformation` builds it), and the infra stack beside it: a small Lambda
zip, templates cfn-lint accepts, the same plain policies and function names as `chalice deploy`, the key on the
data routes, alarms on the metrics the API emits. (`chalice deploy` itself: test_deploy_chalice.py.)"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalice_app.ops import deploy_role, infra
from chalice_app.ops.aws_stage import Stage
from chalice_app.ops.chalice_deploy import package_api
from devkit.stages import API_HANDLER, function_environment
from tests.support.aws_stages import PLACE, infra_template, policy, project_with_policies

STAGES = ["dev", "prod"]
MAX_ZIP_BYTES = 2 * 1024 * 1024  # ~1.2 MB: the API's three requirements, without botocore (18 MB with it)
HEAVY = ("torch/", "transformers/", "sagemaker/", "botocore/", "boto3/", "numpy/", "onnxruntime/")
KEYED_ROUTES = ["/classify", "/classify/batch", "/transactions", "/transactions/{request_id}",
                "/transactions/{request_id}/feedback", "/health/details"]
OPEN_ROUTES = ["/health", "/", "/console/{name}"]  # the console asks for the key itself


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both AWS stages packaged by chalice_app.ops.deploy's own step (a clean project copy, PIP_NO_DEPS)."""
    root = tmp_path_factory.mktemp("api-packages")
    project = project_with_policies(root)
    return {stage: package_api(Stage.load(stage), root / stage, PLACE.region, source=project).parent
            for stage in STAGES}


def template(packages: dict[str, Path], stage: str) -> dict[str, Any]:
    return yaml.safe_load((packages[stage] / "sam.yaml").read_text())


def cfn_lint_errors(path: Path) -> list[str]:
    result = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable", str(path)],
                            capture_output=True, text=True)
    return [line for line in result.stdout.splitlines() if ":E" in line]


@pytest.mark.parametrize("stage", STAGES)
def test_lambda_zip_is_small_and_holds_only_the_api(packages: dict[str, Path], stage: str) -> None:
    archive = packages[stage] / "deployment.zip"
    assert archive.stat().st_size <= MAX_ZIP_BYTES
    names = zipfile.ZipFile(archive).namelist()
    assert not [name for name in names if name.startswith(HEAVY)]
    assert {"app.py", "chalicelib/transactions.py", "pynamodb/models.py", "aws_lambda_powertools/__init__.py",
            "typing_extensions.py", "chalicelib/console/index.html", "chalicelib/console/console.css",
            "chalicelib/console/console.js"} <= set(names)
    assert not [name for name in names if name.startswith(("model/", "training_jobs/", "tests/", "ops/", "local/",
                                                           "reports/", "infra/"))]


@pytest.mark.parametrize("stage", STAGES)
def test_packaged_template_passes_cfn_lint(packages: dict[str, Path], stage: str) -> None:
    assert not cfn_lint_errors(packages[stage] / "sam.yaml")


@pytest.mark.parametrize("template", [infra.TEMPLATE, deploy_role.TEMPLATE], ids=lambda path: path.name)
def test_the_stage_templates_pass_cfn_lint(template: Path) -> None:
    assert not cfn_lint_errors(template)


@pytest.mark.parametrize("stage", STAGES)
def test_template_wires_the_function_to_the_stage_and_its_own_policy(packages: dict[str, Path], stage: str) -> None:
    resources = template(packages, stage)["Resources"]
    assert resources["RestAPI"]["Properties"]["EndpointConfiguration"] == "REGIONAL"
    function = resources["APIHandler"]["Properties"]
    assert function["Timeout"] < 29
    assert function["FunctionName"] == {"Ref": "FunctionName"}  # <app>-<stage>, as chalice deploy names it
    assert function["Environment"]["Variables"] == function_environment(stage, API_HANDLER)
    (role_policy,) = resources["ApiHandlerRole"]["Properties"]["Policies"]
    assert role_policy["PolicyDocument"] == policy(stage)
    assert not [name for name, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"]  # the infra stack's


@pytest.mark.parametrize("stage", STAGES)
def test_api_key_is_required_on_every_route_but_health_and_the_console(packages: dict[str, Path], stage: str) -> None:
    paths = template(packages, stage)["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for route in KEYED_ROUTES:
        for operation in (op for method, op in paths[route].items() if method != "parameters"):
            assert operation["security"] == [{"api_key": []}], route
    for route in OPEN_ROUTES:
        assert "security" not in paths[route]["get"], route


def test_usage_plan_is_left_for_the_binding_with_throttle_and_quota() -> None:
    resources = infra_template()["Resources"]
    plan = resources["UsagePlan"]["Properties"]
    assert "ApiStages" not in plan  # the REST API is chalice deploy's: ops/deploy.py binds it afterwards
    assert set(plan["Throttle"]) == {"RateLimit", "BurstLimit"} and plan["Quota"]["Period"] == "DAY"
    assert resources["UsagePlanKey"]["Properties"] == {"KeyId": {"Ref": "ApiKey"}, "KeyType": "API_KEY",
                                                       "UsagePlanId": {"Ref": "UsagePlan"}}


def test_table_is_on_demand_with_ttl_pitr_sse_and_survives_the_stack() -> None:
    from chalicelib import transactions

    table = infra_template()["Resources"]["TransactionsTable"]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {"AttributeName": transactions.TransactionRecord.expires_at
                                                     .attr_name, "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    schema = transactions.TransactionRecord._get_schema()  # what the API's own create_table makes
    model_indexes = {index["index_name"]: sorted((k["KeyType"], k["AttributeName"]) for k in index["key_schema"])
                     for index in schema["global_secondary_indexes"]}
    assert {index["IndexName"]: sorted((k["KeyType"], k["AttributeName"]) for k in index["KeySchema"])
            for index in properties["GlobalSecondaryIndexes"]} == model_indexes
    assert sorted(properties["AttributeDefinitions"], key=str) == sorted(schema["attribute_definitions"], key=str)


def test_alarms_watch_the_metrics_the_api_emits() -> None:
    """Names from chalicelib/telemetry.py: Powertools metrics with dimensions service + route (+ code)."""
    resources = infra_template()["Resources"]
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {"ServerErrorRateAlarm", "LatencyP95Alarm", "ModelErrorsAlarm", "ThrottlesAlarm",
                           "UnsavedTransactionsAlarm", "DriftAlarm"}  # DriftAlarm: test_drift_stack.py
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
