"""The drift job on AWS: its own least-privilege role, the baseline location that model/tools/deploy_endpoint.py writes
and the
job reads, and an alarm on the metric the job publishes (chalice_app/.chalice, infra/stack.yaml)."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from chalicelib.drift import DriftThresholds
from chalicelib.drift_monitor import JOB
from chalicelib.transactions import DAY_INDEX

from chalice_app.ops.aws_stage import Stage
from chalice_app.ops.chalice_deploy import package_api
from devkit.stages import DRIFT_HANDLER, function_environment, function_name
from model.tools.deploy_endpoint import main
from model.tools.release import artifact_location, baseline_key
from tests.support.aws_stages import PLACE, as_list, drift_policy, infra_template, policy, project_with_policies

AWS_STAGES = ["dev", "prod"]
VERSION = "news-20250101-000000-abcdef12"


@pytest.fixture(scope="module")
def packaged_dev(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("drift-package")
    sam = package_api(Stage.load("dev"), folder / "dev", PLACE.region, source=project_with_policies(folder))
    return yaml.safe_load(Path(sam).read_text())["Resources"]


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_drift_role_may_query_the_day_index_read_baselines_and_log_only(stage: str) -> None:
    statements = {s["Sid"]: s for s in drift_policy(stage)["Statement"]}
    assert [(s["Action"], s["Effect"]) for s in statements.values()] == [
        ("dynamodb:Query", "Allow"), ("s3:GetObject", "Allow"),
        (["logs:CreateLogStream", "logs:PutLogEvents"], "Allow")]
    query, read, logs = statements.values()
    table = function_environment(stage, DRIFT_HANDLER)["TABLE_NAME"]
    assert query["Resource"] == f"arn:aws:dynamodb:{PLACE.region}:{PLACE.account}:table/{table}/index/{DAY_INDEX}"
    # The one wildcard outside the log streams stands for the model version, and only baselines match it.
    bucket, prefix = Stage.load(stage).artifacts
    assert read["Resource"] == f"arn:aws:s3:::{bucket}/{prefix}/*/drift_baseline.json"
    assert logs["Resource"] == (f"arn:aws:logs:{PLACE.region}:{PLACE.account}:log-group:/aws/lambda/"
                                f"{function_name(stage, DRIFT_HANDLER)}:*")


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_the_api_role_gains_nothing_from_the_drift_job(stage: str) -> None:
    actions = {action for statement in policy(stage)["Statement"] for action in as_list(statement["Action"])}
    assert not any(action.startswith("s3:") for action in actions)


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_baseline_key_deployed_is_the_one_the_job_reads_and_may_read(stage: str) -> None:
    bucket, prefix = Stage.load(stage).artifacts  # make deploy passes model.tools.deploy_endpoint --bucket, --prefix
    artifact_key, _ = artifact_location(bucket, prefix, VERSION)
    uri = function_environment(stage, DRIFT_HANDLER)["DRIFT_BASELINE_URI"]
    assert uri.replace("{model_version}", VERSION) == f"s3://{bucket}/{baseline_key(artifact_key)}"
    allowed = drift_policy(stage)["Statement"][1]["Resource"]
    assert fnmatch.fnmatchcase(f"arn:aws:s3:::{bucket}/{baseline_key(artifact_key)}", allowed)
    assert not fnmatch.fnmatchcase(f"arn:aws:s3:::{bucket}/{artifact_key}", allowed)


def test_packaged_function_carries_the_name_policy_and_variables_chalice_deploy_gives_it(
        packaged_dev: dict[str, Any]) -> None:
    function = packaged_dev["MonitorDrift"]["Properties"]
    assert function["FunctionName"] == {"Fn::Sub": "${FunctionName}-monitor_drift"}
    assert function["Role"] == {"Fn::GetAtt": ["MonitorDriftRole", "Arn"]}
    (role_policy,) = packaged_dev["MonitorDriftRole"]["Properties"]["Policies"]
    assert role_policy["PolicyDocument"] == drift_policy("dev")
    assert function["Environment"]["Variables"] == function_environment("dev", DRIFT_HANDLER)
    assert function["Events"]["MonitorDriftEvent"]["Properties"]["Schedule"] == "rate(1 hour)"
    assert function["Timeout"] == 120
    log_group = infra_template()["Resources"]["DriftLogGroup"]["Properties"]
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${DriftFunctionName}"}


def test_alarm_watches_the_metric_the_job_publishes_at_the_documented_level() -> None:
    template = infra_template()
    alarm = template["Resources"]["DriftAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ({"Ref": "MetricsNamespace"}, "DriftPSIMax")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": {"Ref": "ServiceName"}}, {"Name": "job", "Value": JOB}]
    assert (alarm["Statistic"], alarm["Period"], alarm["ComparisonOperator"]) == (
        "Maximum", 3600, "GreaterThanOrEqualToThreshold")  # one run per hour
    assert alarm["Threshold"] == {"Ref": "DriftPsiAlarmThreshold"}
    assert template["Parameters"]["DriftPsiAlarmThreshold"]["Default"] == DriftThresholds().alarm
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_deploying_a_model_folder_without_a_baseline_is_a_clear_error(tiny_model_copy: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    (tiny_model_copy / "drift_baseline.json").unlink()
    assert main(["deploy", "--dry-run", "--region", "us-east-1", "--model-dir", str(tiny_model_copy), "--endpoint",
                 "news-classifier-dev", "--bucket", "news-artifacts", "--role", "arn:aws:iam::1:role/r",
                 "--image-uri", "image"]) == 2
    assert "python -m training_jobs.drift_baseline --model-dir" in caplog.text
