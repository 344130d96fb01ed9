"""The AWS stages in chalice_app/.chalice: settings, plain least-privilege IAM policies, and names that match what
the infra stack (infra/stack.yaml), `chalice deploy` and model/tools/deploy.py create."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from chalice.config import Config
from chalicelib.config import access_settings, api_key_required, settings_problems

from chalice_app.ops import aws_stage, infra, policies
from chalice_app.ops.aws_stage import DeployError, Stage
from chalice_app.ops.stages import (
    API_HANDLER,
    CHALICE_DIR,
    CONFIG_FILE,
    DRIFT_HANDLER,
    function_environment,
    function_name,
    stage_environment,
)
from model.tools.release import NAME
from tests.support.aws_stages import as_list, infra_template, policy, stage_config

AWS_STAGES = ["dev", "prod"]
API_GATEWAY_TIMEOUT_S = 29
MAX_ENDPOINT_NAME = 26  # model/tools/release.py names configs <endpoint>-<model_version>-<digest>: 63 characters
CLOUDFORMATION_SYNTAX = ("Fn::", "Ref", "${AWS::")


def chalice_config(stage: str, handler: str) -> Config:
    """Chalice's own reading of the project's config for one function."""
    return Config(chalice_stage=stage, function_name=handler, config_from_disk=json.loads(CONFIG_FILE.read_text()))


def statements(stage: str, service: str) -> list[dict[str, Any]]:
    return [s for s in policy(stage)["Statement"] if all(a.startswith(f"{service}:") for a in as_list(s["Action"]))]


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_stage_runs_behind_a_regional_api_within_the_gateway_timeout(stage: str) -> None:
    config = stage_config(stage)
    assert config["api_gateway_endpoint_type"] == "REGIONAL"
    assert config["lambda_timeout"] < API_GATEWAY_TIMEOUT_S
    assert config["lambda_memory_size"] >= 128
    assert "log_retention_in_days" not in config  # the infra stack owns the log groups and their retention
    assert int(infra.parameters(stage)["LogRetentionDays"]) > 0
    assert config["autogen_policy"] is False
    environment = Stage.load(stage).environment
    assert environment["API_KEY_REQUIRED"] == "true"
    assert int(environment["TRANSACTION_TTL_DAYS"]) > 0
    assert environment["POWERTOOLS_METRICS_NAMESPACE"].endswith(stage)  # alarms of one stage see only its traffic


@pytest.mark.parametrize("stage", AWS_STAGES)
@pytest.mark.parametrize("handler", [API_HANDLER, DRIFT_HANDLER])
def test_each_function_gets_the_variables_chalice_gives_it(stage: str, handler: str) -> None:
    assert function_environment(stage, handler) == chalice_config(stage, handler).environment_variables
    if handler == API_HANDLER:
        assert stage_environment(stage) == chalice_config(stage, handler).environment_variables


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_policy_files_are_what_the_stage_settings_make(stage: str) -> None:
    assert policies.stale() == []
    assert policy(stage) == policies.api_policy(stage)
    assert policies.main([]) == 0


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_policies_are_plain_iam_with_no_wildcard_but_account_region_and_log_streams(stage: str) -> None:
    drift_file = stage_config(stage)["lambda_functions"][DRIFT_HANDLER]["iam_policy_file"]
    for document in (policy(stage), json.loads((CHALICE_DIR / ".chalice" / drift_file).read_text())):
        text = json.dumps(document)
        assert not any(marker in text for marker in CLOUDFORMATION_SYNTAX), "chalice deploy sends it as it is"
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            assert not any("*" in action for action in as_list(statement["Action"]))
            for resource in as_list(statement["Resource"]):
                _, partition, service, region, account, name = resource.split(":", 5)
                assert partition == "aws" and region in ("*", "") and account in ("*", "")  # S3 ARNs have neither
                wildcards = name.count("*")
                if service == "logs":
                    assert wildcards == 1 and name.endswith(":*"), "only the log streams of one group"
                elif service == "s3":
                    assert wildcards == 1 and name.endswith("/*/drift_baseline.json"), "only the model version"
                else:
                    assert wildcards == 0


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_policy_grants_the_stage_endpoint_its_table_and_its_log_group_only(stage: str) -> None:
    environment = Stage.load(stage).environment
    (invoke,) = statements(stage, "sagemaker")
    assert invoke["Action"] == "sagemaker:InvokeEndpoint"
    # SageMaker ARNs carry the endpoint name in lower case.
    assert invoke["Resource"] == f"arn:aws:sagemaker:*:*:endpoint/{environment['ENDPOINT_NAME'].lower()}"
    table, feedback, index, review = statements(stage, "dynamodb")
    assert set(table["Action"]) == {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert table["Resource"] == f"arn:aws:dynamodb:*:*:table/{environment['TABLE_NAME']}"
    assert (feedback["Action"], feedback["Resource"]) == ("dynamodb:UpdateItem", table["Resource"])
    assert set(feedback["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == {
        "request_id", "feedback_label", "feedback_at", "feedback_by", "feedback_source", "review_day",
        "review_margin"}  # never a recorded answer
    assert index["Action"] == "dynamodb:Query"  # recent traffic: the day and client indexes, never a Scan
    assert index["Resource"] == [f"{table['Resource']}/index/day-created_at-index",
                                 f"{table['Resource']}/index/client-created_at-index"]
    assert (review["Action"], review["Resource"]) == (  # the review queue: its own index only
        "dynamodb:Query", f"{table['Resource']}/index/review_day-review_margin-index")
    (logs,) = statements(stage, "logs")
    assert set(logs["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert logs["Resource"] == f"arn:aws:logs:*:*:log-group:/aws/lambda/{function_name(stage)}:*"
    assert len(policy(stage)["Statement"]) == 6


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_infra_stack_creates_the_names_the_stage_and_its_policies_use(stage: str) -> None:
    resources, parameters = infra_template()["Resources"], infra.parameters(stage)
    environment = Stage.load(stage).environment
    assert resources["TransactionsTable"]["Properties"]["TableName"] == {"Ref": "TableName"}
    assert parameters["TableName"] == environment["TABLE_NAME"]
    # The log groups of the functions chalice deploy names <app>-<stage> and <app>-<stage>-monitor_drift.
    assert resources["ApiLogGroup"]["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${FunctionName}"}
    assert resources["DriftLogGroup"]["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${DriftFunctionName}"}
    assert parameters["FunctionName"] == function_name(stage) == f"news-classifier-api-{stage}"
    assert parameters["DriftFunctionName"] == function_name(stage, DRIFT_HANDLER) == \
        f"{function_name(stage)}-monitor_drift"
    # The endpoint is model/tools/deploy.py's: `make deploy` passes it this very name, and its image repository's.
    assert parameters["EndpointName"] == environment["ENDPOINT_NAME"] == parameters["RepositoryName"]
    assert NAME.match(environment["ENDPOINT_NAME"]) and len(environment["ENDPOINT_NAME"]) <= MAX_ENDPOINT_NAME
    assert parameters["MetricsNamespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert parameters["StageName"] == stage_config(stage)["api_gateway_stage"]


def test_stages_do_not_share_endpoint_table_bucket_or_metrics() -> None:
    for name in ("ENDPOINT_NAME", "TABLE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        assert len({Stage.load(stage).environment[name] for stage in AWS_STAGES}) == len(AWS_STAGES), name
    assert len({Stage.load(stage).artifacts for stage in AWS_STAGES}) == len(AWS_STAGES)


def test_infra_parameters_are_exactly_what_the_template_needs() -> None:
    template = infra_template()
    required = {name for name, spec in template["Parameters"].items() if "Default" not in spec}
    for stage in AWS_STAGES:
        given = set(infra.parameters(stage))
        assert required <= given <= set(template["Parameters"])


def test_a_levels_file_cannot_rename_what_the_config_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "parameters-dev.json").write_text('{"TableName": "other"}')
    monkeypatch.setattr(infra, "PARAMETERS_DIR", tmp_path)
    with pytest.raises(infra.InfraError, match=r"TableName come from \.chalice/config\.json"):
        infra.parameters("dev")


@pytest.mark.parametrize("stage", [*AWS_STAGES, "local"])
def test_every_stage_has_settings_the_api_accepts(stage: str) -> None:
    assert settings_problems(stage_environment(stage)) == []


@pytest.mark.parametrize(("variable", "value"), [("TRANSACTION_TTL_DAYS", "thirty"), ("MODEL_VARIANTS", "{}"),
                                                 ("DRIFT_WINDOW_HOURS", "0")])
def test_a_stage_the_api_would_refuse_is_not_deployed(monkeypatch: pytest.MonkeyPatch, variable: str,
                                                      value: str) -> None:
    broken = {**stage_environment("dev"), variable: value}
    monkeypatch.setattr(aws_stage, "stage_environment", lambda name: broken)
    with pytest.raises(DeployError, match=f"stage 'dev' .* the API would refuse {variable}"):
        Stage.load("dev")


def test_local_stage_is_not_deployable_and_needs_no_key() -> None:
    with pytest.raises(DeployError, match="not meant for AWS"):
        Stage.load("local")
    assert not api_key_required(stage_environment("local"))
    assert access_settings(stage_environment("local")).everyone_is_operator


def test_a_stage_that_forgets_the_key_setting_requires_keys() -> None:
    assert api_key_required({}) and api_key_required({"API_KEY_REQUIRED": "yes please"})
    assert not api_key_required({"API_KEY_REQUIRED": "false"})


@pytest.mark.parametrize(("variable", "value"), [("API_KEY_REQUIRED", "false"), ("OPERATOR_KEY_IDS", "*")])
def test_a_stage_open_to_anyone_is_not_deployed(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    opened = {**stage_environment("dev"), variable: value}
    monkeypatch.setattr(aws_stage, "stage_environment", lambda name: opened)
    with pytest.raises(DeployError, match=f"stage 'dev' .* would be open on AWS: {re.escape(variable)}"):
        Stage.load("dev")


def test_operator_keys_are_ids_or_everyone_never_both() -> None:
    assert access_settings({"OPERATOR_KEY_IDS": " k1, k2 ,"}).operator_key_ids == {"k1", "k2"}
    assert settings_problems({"OPERATOR_KEY_IDS": "k1,*"}) == [
        "OPERATOR_KEY_IDS='k1,*': '*' (everyone) cannot be combined with key ids"]
