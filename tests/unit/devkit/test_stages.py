"""The AWS stages in chalice_app/.chalice: settings, plain least-privilege IAM policies, and names that match what
the infra stack (infra/stack.yaml), `chalice deploy` and model/tools/deploy_endpoint.py create."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from chalice import Chalice
from chalice.config import Config
from chalicelib.config import access_settings, api_key_required, settings_problems

from chalice_app.ops import infra, policies
from chalice_app.ops.aws_stage import DeployError, Stage
from chalice_app.ops.policies import Place
from devkit.aws_names import SAGEMAKER_NAME
from devkit.stages import (
    API_HANDLER,
    CHALICE_DIR,
    CONFIG_FILE,
    DRIFT_HANDLER,
    deployed_functions,
    function_environment,
    function_name,
    stage_environment,
)
from tests.support import REPO_ROOT
from tests.support.aws_stages import PLACE, as_list, drift_policy, infra_template, policy, stage_config

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
def test_policy_files_are_written_where_chalice_reads_them_for_the_place_given(stage: str, tmp_path: Path) -> None:
    written = policies.write(stage, PLACE, chalice_dir=tmp_path)
    config = stage_config(stage)
    assert written == [tmp_path / config["iam_policy_file"],
                       tmp_path / config["lambda_functions"][DRIFT_HANDLER]["iam_policy_file"]]
    assert [json.loads(path.read_text()) for path in written] == [policy(stage), drift_policy(stage)]
    assert policies.write("local", PLACE, chalice_dir=tmp_path) == []  # autogen_policy: Chalice writes its own
    with pytest.raises(ValueError, match="12 digits"):
        policies.write(stage, Place("*", PLACE.region), chalice_dir=tmp_path)
    with pytest.raises(ValueError, match="not an AWS region"):
        policies.write(stage, Place(PLACE.account, "*"), chalice_dir=tmp_path)


def test_the_policies_command_prints_or_refuses_what_it_would_write(capsys: pytest.CaptureFixture[str]) -> None:
    place = ["--account", PLACE.account, "--region", PLACE.region]
    assert policies.main(["--stage", "dev", *place, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# policy-dev.json\n") and "# policy-drift-dev.json\n" in out
    assert json.loads(out.split("# policy-drift-dev.json\n")[1]) == drift_policy("dev")
    assert policies.main(["--stage", "local", *place, "--dry-run"]) == 2
    assert policies.main(["--stage", "dev", "--account", "*", "--region", PLACE.region, "--dry-run"]) == 2
    assert "12 digits" in capsys.readouterr().err


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_policies_are_plain_iam_with_no_wildcard_but_log_streams_and_model_versions(stage: str) -> None:
    for document in (policy(stage), drift_policy(stage)):
        text = json.dumps(document)
        assert not any(marker in text for marker in CLOUDFORMATION_SYNTAX), "chalice deploy sends it as it is"
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            assert not any("*" in action for action in as_list(statement["Action"]))
            for resource in as_list(statement["Resource"]):
                _, partition, service, region, account, name = resource.split(":", 5)
                assert partition == "aws"
                # the account and region deployed to; S3 ARNs name neither (bucket names are global)
                assert (region, account) == (("", "") if service == "s3" else (PLACE.region, PLACE.account))
                wildcards = name.count("*")
                if service == "logs":
                    assert wildcards == 1 and name.endswith(":*"), "only the log streams of one group"
                elif service == "s3":
                    assert wildcards == 1 and name.endswith("/*/drift_baseline.json"), "only the model version"
                else:
                    assert wildcards == 0


# The ARNs that name no region or no account, by AWS's own format: IAM is global, S3 names buckets only, API Gateway's
# ARNs carry no account, CloudWatch dashboards are global, and AWS's own resources (managed policies, transforms)
# are in the account `aws`. Everything else names the account and region it lives in.
REGIONLESS = ("iam:", "s3:", "cloudwatch:dashboard/")
ACCOUNTLESS = ("s3:", "apigateway:")
ARN = re.compile(r"arn:([^:\s\"'`]*):([^:\s\"'`]*):([^:\s\"'`]*):([^:\s\"'`]*):([^\s\"'`]*)")
PSEUDO_PARAMETERS = {"${AWS::Partition}": "aws", "${AWS::Region}": "REGION", "${AWS::AccountId}": "ACCOUNT"}
NOT_SHIPPED = {".git", ".venv", ".venv-docs", "tests", "site", "artifacts", "node_modules", "__pycache__"}


def shipped_files() -> list[Path]:
    """Every text file that ships or documents what ships: code, templates, policies, workflows, docs."""
    suffixes = {".py", ".json", ".yaml", ".yml", ".md", ".toml", ".txt"}
    return [path for path in REPO_ROOT.rglob("*") if path.is_file() and path.suffix in suffixes
            and not NOT_SHIPPED & set(path.relative_to(REPO_ROOT).parts)]


def wildcard_places(text: str) -> list[str]:
    """The ARNs in `text` whose region or account is a wildcard, or empty where AWS's format has one."""
    for parameter, value in PSEUDO_PARAMETERS.items():
        text = text.replace(parameter, value)
    found = []
    for match in ARN.finditer(text):
        _, service, region, account, rest = match.groups()
        resource = f"{service}:{rest}"
        if "*" in region or "*" in account or (not region and not resource.startswith(REGIONLESS)) or (
                not account and not resource.startswith(ACCOUNTLESS)):
            found.append(match.group(0))
    return found


def test_no_shipped_policy_or_template_matches_resources_in_any_account_or_region(tmp_path: Path) -> None:
    """The Lambda policies (as the deployment writes them), the infra and deploy-role templates, and every ARN the
    code, docs and workflows spell: each names its account and region (CloudFormation's AWS::AccountId and
    AWS::Region in templates), but where AWS's format has none."""
    written = [path for stage in AWS_STAGES for path in policies.write(stage, PLACE, chalice_dir=tmp_path)]
    offending = {str(path): wildcard_places(path.read_text()) for path in [*written, *shipped_files()]}
    assert {path: arns for path, arns in offending.items() if arns} == {}
    assert len(written) == 4 and infra.TEMPLATE in shipped_files()
    assert wildcard_places("arn:aws:dynamodb:*:*:table/t arn:aws:logs:eu-west-1::log-group:g") == [
        "arn:aws:dynamodb:*:*:table/t", "arn:aws:logs:eu-west-1::log-group:g"]
    assert wildcard_places("!Sub arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:topic "
                           "arn:aws:iam::aws:policy/p arn:aws:s3:::bucket/* arn:aws:apigateway:eu-west-1::/restapis "
                           "arn:aws:cloudwatch::123456789012:dashboard/d") == []


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_policy_grants_the_stage_endpoint_its_table_and_its_log_group_only(stage: str) -> None:
    environment = Stage.load(stage).environment
    (invoke,) = statements(stage, "sagemaker")
    assert invoke["Action"] == "sagemaker:InvokeEndpoint"
    # SageMaker ARNs carry the endpoint name in lower case.
    assert invoke["Resource"] == f"arn:aws:sagemaker:{PLACE.region}:{PLACE.account}:endpoint/" \
        f"{environment['ENDPOINT_NAME'].lower()}"
    table, feedback, index, review = statements(stage, "dynamodb")
    assert set(table["Action"]) == {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert table["Resource"] == f"arn:aws:dynamodb:{PLACE.region}:{PLACE.account}:table/{environment['TABLE_NAME']}"
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
    assert logs["Resource"] == f"arn:aws:logs:{PLACE.region}:{PLACE.account}:log-group:/aws/lambda/" \
        f"{function_name(stage)}:*"
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
    # The endpoint is model/tools/deploy_endpoint.py's: `make deploy` passes it this very name, and its image
    # repository's.
    assert parameters["EndpointName"] == environment["ENDPOINT_NAME"] == parameters["RepositoryName"]
    assert SAGEMAKER_NAME.match(environment["ENDPOINT_NAME"]) and len(environment["ENDPOINT_NAME"]) <= MAX_ENDPOINT_NAME
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


def config_with(tmp_path: Path, level: str, variable: str, value: str) -> Path:
    """A copy of the project's .chalice/ whose dev stage gets `variable` at one level Chalice merges: the top
    level's variables, the stage's, or one function's (`stages.dev.lambda_functions.<handler>`)."""
    shutil.copytree(CHALICE_DIR / ".chalice", tmp_path / ".chalice")
    config_file = tmp_path / ".chalice" / "config.json"
    config = json.loads(config_file.read_text())
    section = {"top": config, "stage": config["stages"]["dev"]}.get(level) or \
        config["stages"]["dev"].setdefault("lambda_functions", {}).setdefault(level, {})
    section.setdefault("environment_variables", {})[variable] = value
    config_file.write_text(json.dumps(config))
    return config_file


LEVELS = ["top", "stage", API_HANDLER, DRIFT_HANDLER]


def reached(level: str, variable: str) -> set[str]:
    """The functions a variable set at `level` reaches: a function's own section reaches that function alone; the
    top level's reaches none where the stage sets the variable too (the lower level wins, as Chalice merges)."""
    if level in (API_HANDLER, DRIFT_HANDLER):
        return {level}
    if level == "top" and variable in json.loads(CONFIG_FILE.read_text())["stages"]["dev"]["environment_variables"]:
        return set()
    return {API_HANDLER, DRIFT_HANDLER}


def refused_functions(config_file: Path, pattern: str, variable: str) -> set[str]:
    """The functions Stage.load names with `variable` when it refuses the stage (its message matching
    `pattern`); none when it loads it."""
    try:
        Stage.load("dev", config_file)
    except DeployError as exc:
        assert re.search(pattern, str(exc)), exc
        return {function for function in (API_HANDLER, DRIFT_HANDLER) if f"{function}: {variable}" in str(exc)}
    return set()


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("variable", "value"), [("TRANSACTION_TTL_DAYS", "thirty"), ("MODEL_VARIANTS", "{}"),
                                                 ("DRIFT_WINDOW_HOURS", "0"), ("UNCERTAIN_BELOW", "2")])
def test_a_stage_the_api_would_refuse_is_not_deployed(tmp_path: Path, level: str, variable: str,
                                                      value: str) -> None:
    config_file = config_with(tmp_path, level, variable, value)
    assert refused_functions(config_file, "stage 'dev' .* the API would refuse", variable) == reached(level, variable)


def test_local_stage_is_not_deployable_and_needs_no_key() -> None:
    with pytest.raises(DeployError, match="not meant for AWS"):
        Stage.load("local")
    assert not api_key_required(stage_environment("local"))
    assert access_settings(stage_environment("local")).everyone_is_operator


def test_a_stage_that_forgets_the_key_setting_requires_keys() -> None:
    assert api_key_required({}) and api_key_required({"API_KEY_REQUIRED": "yes please"})
    assert not api_key_required({"API_KEY_REQUIRED": "false"})


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("variable", "value"), [("API_KEY_REQUIRED", "false"), ("OPERATOR_KEY_IDS", "*")])
def test_a_stage_open_to_anyone_is_not_deployed(tmp_path: Path, level: str, variable: str, value: str) -> None:
    """Whichever level of .chalice/config.json opens it: a variable in one function's own section reaches that
    function alone (its neighbours' variables pass), so each function's merged variables are checked."""
    config_file = config_with(tmp_path, level, variable, value)
    assert refused_functions(config_file, "stage 'dev' .* would be open on AWS", variable) == reached(level, variable)


def test_every_function_the_app_declares_is_checked(tmp_path: Path) -> None:
    """A function app.py does not have yet (a pure Lambda, as `@app.lambda_function` makes) is deployed with its own
    section's variables, and the guard reads them too."""
    app = Chalice(app_name="news-classifier-api")
    app.route("/health")(lambda: {})
    app.lambda_function(name="reindex")(lambda event, context: None)
    config_file = config_with(tmp_path, "reindex", "OPERATOR_KEY_IDS", "*")
    assert deployed_functions("dev", config_file, app)["reindex"] == {
        **stage_environment("dev"), "OPERATOR_KEY_IDS": "*"}
    with pytest.raises(DeployError, match=re.escape("would be open on AWS: reindex: OPERATOR_KEY_IDS='*'")):
        Stage.load("dev", config_file, app)
    Stage.load("dev", config_file)  # app.py has no such function: Chalice deploys that section nowhere


@pytest.mark.parametrize("stage", AWS_STAGES)
def test_the_guard_reads_every_function_chalice_deploys(stage: str) -> None:
    functions = deployed_functions(stage)
    assert set(functions) == {API_HANDLER, DRIFT_HANDLER}
    assert {name: function_environment(stage, name) for name in functions} == functions


def test_operator_keys_are_ids_or_everyone_never_both() -> None:
    assert access_settings({"OPERATOR_KEY_IDS": " k1, k2 ,"}).operator_key_ids == {"k1", "k2"}
    assert settings_problems({"OPERATOR_KEY_IDS": "k1,*"}) == [
        "OPERATOR_KEY_IDS='k1,*': '*' (everyone) cannot be combined with key ids"]
