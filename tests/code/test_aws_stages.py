"""The AWS stages in chalice_app/.chalice: settings, least-privilege policies, and names that match what the
stack template (infra/resources.yaml) and model/deploy.py create."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from chalice.package import YAMLTemplateSerializer
from chalicelib.config import access_settings, api_key_required, settings_problems
from chalicelib.transactions import DAY_INDEX

from chalice_app.ops import deploy
from chalice_app.ops.deploy import MERGE_TEMPLATE, DeployError, Stage
from chalice_app.ops.stages import CHALICE_DIR, CONFIG_FILE, function_name, stage_environment
from model.deploy import NAME

AWS_STAGES = ["dev", "prod"]
API_GATEWAY_TIMEOUT_S = 29
MAX_ENDPOINT_NAME = 26  # model/deploy.py names configs <endpoint>-<model_version>-<digest>, at most 63 characters
ALLOWED_DYNAMODB_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}


def stage_config(stage: str) -> dict[str, Any]:
    """The stage's effective settings, stage keys over top-level keys, as Chalice reads them."""
    config = json.loads(CONFIG_FILE.read_text())
    return {**{k: v for k, v in config.items() if k != "stages"}, **config["stages"][stage]}


def policy(stage: str) -> dict[str, Any]:
    return json.loads((CHALICE_DIR / ".chalice" / stage_config(stage)["iam_policy_file"]).read_text())


def merge_template() -> dict[str, Any]:
    return YAMLTemplateSerializer().load_template((CHALICE_DIR / MERGE_TEMPLATE).read_text())


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def statements(stage: str, service: str) -> list[dict[str, Any]]:
    return [s for s in policy(stage)["Statement"] if all(a.startswith(f"{service}:") for a in as_list(s["Action"]))]


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_stage_runs_behind_a_regional_api_within_the_gateway_timeout(stage: str) -> None:
    config = stage_config(stage)
    assert config["api_gateway_endpoint_type"] == "REGIONAL"
    assert config["lambda_timeout"] < API_GATEWAY_TIMEOUT_S
    assert config["lambda_memory_size"] >= 128
    assert config["log_retention_in_days"] > 0
    assert config["autogen_policy"] is False
    environment = Stage.load(stage).environment
    assert environment["API_KEY_REQUIRED"] == "true"
    assert int(environment["TRANSACTION_TTL_DAYS"]) > 0
    assert environment["POWERTOOLS_METRICS_NAMESPACE"].endswith(stage)  # alarms of one stage see only its traffic


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_policy_has_no_wildcards_but_in_the_log_stream(stage: str) -> None:
    for statement in policy(stage)["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in as_list(statement["Action"]))
        resource = json.dumps(statement["Resource"])
        if as_list(statement["Action"])[0].startswith("logs:"):
            assert resource.count("*") == 1 and resource.endswith(':*"}'), "only the log streams of one group"
        else:
            assert "*" not in resource


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_policy_grants_the_stage_endpoint_its_table_and_its_log_group_only(stage: str) -> None:
    environment = Stage.load(stage).environment
    (invoke,) = statements(stage, "sagemaker")
    assert invoke["Action"] == "sagemaker:InvokeEndpoint"
    # SageMaker ARNs carry the endpoint name in lower case.
    assert invoke["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:"
                                             f"endpoint/{environment['ENDPOINT_NAME'].lower()}"}
    table, index = statements(stage, "dynamodb")
    assert set(table["Action"]) == ALLOWED_DYNAMODB_ACTIONS
    assert table["Resource"] == {"Fn::GetAtt": ["TransactionsTable", "Arn"]}
    assert index["Action"] == "dynamodb:Query"  # the console's recent traffic: the day index only, no Scan
    assert index["Resource"] == {"Fn::Sub": f"${{TransactionsTable.Arn}}/index/{DAY_INDEX}"}
    (logs,) = statements(stage, "logs")
    assert set(logs["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert logs["Resource"]["Fn::Sub"].endswith(f":log-group:/aws/lambda/{function_name(stage)}:*")
    assert len(policy(stage)["Statement"]) == 4


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_stage_names_only_resources_the_stack_or_the_endpoint_deployer_create(stage: str) -> None:
    resources, parameters = merge_template()["Resources"], Stage.load(stage).parameters("news-artifacts")
    environment = Stage.load(stage).environment
    assert resources["TransactionsTable"]["Properties"]["TableName"] == {"Ref": "TableName"}
    assert parameters["TableName"] == environment["TABLE_NAME"]
    assert resources["APIHandler"]["Properties"]["FunctionName"] == {"Ref": "FunctionName"}
    assert resources["ApiHandlerLogGroup"]["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${FunctionName}"}
    assert parameters["FunctionName"] == function_name(stage)
    # The endpoint is model/deploy.py's: `make deploy` passes it this very name.
    assert parameters["EndpointName"] == environment["ENDPOINT_NAME"]
    assert NAME.match(environment["ENDPOINT_NAME"]) and len(environment["ENDPOINT_NAME"]) <= MAX_ENDPOINT_NAME
    assert parameters["MetricsNamespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]


def test_stages_do_not_share_endpoint_table_or_metrics() -> None:
    for name in ("ENDPOINT_NAME", "TABLE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        assert len({Stage.load(stage).environment[name] for stage in AWS_STAGES}) == len(AWS_STAGES), name


def test_template_parameters_are_exactly_what_deploy_passes() -> None:
    template = merge_template()
    required = {name for name, spec in template["Parameters"].items() if "Default" not in spec}
    assert required == set(Stage.load("dev").parameters("news-artifacts"))


@pytest.mark.parametrize("stage", [*AWS_STAGES, "local"])
def test_every_stage_has_settings_the_api_accepts(stage: str) -> None:
    assert settings_problems(stage_environment(stage)) == []


@pytest.mark.parametrize(("variable", "value"), [("TRANSACTION_TTL_DAYS", "thirty"), ("MODEL_VARIANTS", "{}"),
                                                 ("DRIFT_WINDOW_HOURS", "0")])
def test_a_stage_the_api_would_refuse_is_not_deployed(monkeypatch: pytest.MonkeyPatch, variable: str,
                                                      value: str) -> None:
    broken = {**stage_environment("dev"), variable: value}
    monkeypatch.setattr(deploy, "stage_environment", lambda name: broken)
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
    monkeypatch.setattr(deploy, "stage_environment", lambda name: opened)
    with pytest.raises(DeployError, match=f"stage 'dev' .* would be open on AWS: {re.escape(variable)}"):
        Stage.load("dev")


def test_operator_keys_are_ids_or_everyone_never_both() -> None:
    assert access_settings({"OPERATOR_KEY_IDS": " k1, k2 ,"}).operator_key_ids == {"k1", "k2"}
    assert settings_problems({"OPERATOR_KEY_IDS": "k1,*"}) == [
        "OPERATOR_KEY_IDS='k1,*': '*' (everyone) cannot be combined with key ids"]
