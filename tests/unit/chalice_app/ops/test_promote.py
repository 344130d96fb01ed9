"""`make promote` (chalice_app/ops/promote.py): a registered version's endpoint, the stage's canary share and the API
redeployed as one plan of ordinary function calls. Locally the registry records the split `make local-canary`
serves; on AWS a run on moto's server makes the calls its dry run prints, in the printed order."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalicelib.config import MODEL_VARIANTS

from chalice_app.ops import canary
from chalice_app.ops.promote import (
    PromotionClients,
    Target,
    main,
    parse_args,
    promote_plan,
    target_from_args,
    version_endpoint,
)
from devkit.plan import as_comment, execute, show
from devkit.stages import CHALICE_DIR, stage_environment
from model.artifact import read_metadata, write_metadata
from tests.support.recorded_calls import CallLog, assert_printed, printed_calls, recorded_calls
from tests.unit.chalice_app.ops.test_deploy import FakeApi, Recorder, moto_clients
from tests.unit.model.tools.test_deploy_endpoint import answer_like_the_container
from training_jobs import registry as registry_cli
from training_jobs.registry import ModelRegistry, Registration, VersionRecord

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
VERSION = "news-20260102-000000-0000beef"
BASE = "news-20260101-000000-00000001"
METRICS = {"accuracy": 0.9, "macro_f1": 0.88, "n": 150}
PASSED = {"promote": True, "verdict": "promote", "checks": []}
# moto's CloudFormation warns of the infra stack's resources it does not model
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS.{2}(CloudWatch.{2}Alarm|ApiGateway.{2}Account)")


def registered(root: Path, model_dir: Path | None = None, version: str = VERSION) -> ModelRegistry:
    """A registry holding `version` as `make retrain` leaves it: in its folder, passed against BASE."""
    registry = ModelRegistry(root)
    folder = registry.version_dir(version)
    if model_dir is None:
        folder.mkdir(parents=True)
    else:
        shutil.copytree(model_dir, folder)
        write_metadata(folder, {**read_metadata(folder), "model_version": version})
    base = model_dir or root / "base"
    registry.register(Registration(VersionRecord(version, folder, METRICS, "test.tsv"),
                                   VersionRecord(BASE, base, METRICS, "test.tsv"), PASSED), NOW)
    return registry


def stage_config(tmp_path: Path) -> Path:
    """A copy of the stages' settings and policies: a run writes MODEL_VARIANTS and the policy files there."""
    return shutil.copytree(CHALICE_DIR / ".chalice", tmp_path / "chalice" / ".chalice",
                           ignore=shutil.ignore_patterns("deployed", "deployments")) / "config.json"


def test_version_endpoints_fit_the_config_names_of_model_tools_release() -> None:
    assert version_endpoint("news-classifier-dev", "news-20261125-062735-12b24cfc") == "news-classifier-dev-12b24c"
    assert version_endpoint("news-classifier-prod", "news-20261125-062735-12b24cfc") == "news-classifier-prod-12b24"
    assert len(f"{version_endpoint('news-classifier-prod', VERSION)}-{VERSION}-abcdef") <= 63


def test_a_local_promotion_records_the_split_that_local_canary_serves(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = registered(tmp_path / "models")
    assert main(["--stage", "local", "--version", VERSION, "--registry", str(registry.root)]) == 0
    assert "`make local-canary` serves the split" in capsys.readouterr().out
    state = registry.read()
    assert (state["current"], state["previous"]) == (VERSION, BASE)
    assert state["versions"][VERSION]["gate"]["against"] == BASE  # the registration's verdict is kept
    assert registry.stage_variants("local") == {"news-classifier": 0.9, "news-classifier-0000beef": 0.1}
    assert registry_cli.main(["--registry", str(registry.root)]) == 0
    assert capsys.readouterr().out.split() == [f"news-classifier={(tmp_path / 'models' / 'base').resolve()}:0.9",
                                               f"news-classifier-0000beef={registry.version_dir(VERSION)}:0.1"]
    # A second version takes its share from both: the registry's split, not the stage's config, is the local routing.
    second = "news-20260103-000000-0000cafe"
    registered(tmp_path / "models", version=second)
    assert main(["--stage", "local", "--version", second, "--registry", str(registry.root), "--canary-share",
                 "0.5"]) == 0
    assert registry.stage_variants("local") == {"news-classifier": 0.45, "news-classifier-0000beef": 0.05,
                                                "news-classifier-0000cafe": 0.5}


def test_a_local_dry_run_prints_the_record_and_writes_nothing(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    registry = registered(tmp_path / "models")
    before = registry.file.read_text()
    assert main(["--stage", "local", "--version", VERSION, "--registry", str(registry.root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert printed_calls(out, commented=True) == [("registry", "promote")]
    assert "dry run: would promote" in out and '"news-classifier-0000beef": 0.1' in out
    assert registry.file.read_text() == before


@pytest.mark.parametrize(("argv", "message"), [
    (["--stage", "local", "--version", "news-unknown"], "has not passed the gate"),
    (["--stage", "local", "--version", BASE], "has not passed the gate"),  # registered only as what VERSION beat
    (["--stage", "local", "--version", VERSION, "--canary-share", "0"], "greater than 0 and at most 1"),
    (["--stage", "local", "--version", VERSION, "--deploy-args", "--region", "x"], "deploys nothing"),
    (["--stage", "staging", "--version", VERSION, "--dry-run", "--deploy-args", "--region", "us-east-1"],
     "no stage 'staging'"),
])
def test_what_cannot_be_promoted_is_a_message_and_exit_code_2(
        argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = registered(tmp_path / "models")
    before = registry.file.read_text()
    assert main(["--registry", str(registry.root), *argv]) == 2  # --deploy-args takes the rest
    assert message in capsys.readouterr().err
    assert registry.file.read_text() == before


def aws_target(tmp_path: Path, model_dir: Path) -> Target:
    """A registered copy of `model_dir`, to be promoted to dev with a copy of the stages' settings."""
    registry = registered(tmp_path / "models", model_dir)
    return Target("dev", *registry.registered(VERSION), 0.1, registry, stage_config(tmp_path))


def aws_options(tmp_path: Path, target: Target, *deploy_args: str) -> Any:
    """`make deploy`'s options as promote builds them, Chalice's project in tmp_path (where the stand-in `chalice
    deploy` records the REST API) and no waiting between polls."""
    args = parse_args(["--stage", "dev", "--version", VERSION, "--registry", str(target.registry.root),
                       "--deploy-args", "--region", "us-east-1", "--poll-seconds", "0",
                       "--endpoint-args=--poll-seconds 0", *deploy_args])
    _, options = target_from_args(args)
    project = target.config_file.parent.parent
    (project / ".chalice" / "deployments").mkdir(exist_ok=True)
    return replace(options, project=project)


@pytest.fixture
def sagemaker_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint's role, and no image repository: the Hugging Face image serves, with no docker to build."""
    monkeypatch.setenv("SAGEMAKER_ROLE_ARN", "arn:aws:iam::123456789012:role/SageMakerInference")
    monkeypatch.delenv("ECR_REPOSITORY", raising=False)


def test_a_dry_run_prints_endpoint_routing_api_and_record_in_order_and_changes_nothing(
        tiny_model_dir: Path, tmp_path: Path, aws_credentials: None, sagemaker_settings: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = aws_target(tmp_path, tiny_model_dir)
    config, registry_file = target.config_file.read_text(), target.registry.file.read_text()
    with recorded_calls() as sent:
        show(promote_plan(target, aws_options(tmp_path, target), dry_run=True, run=Recorder()).steps, as_comment)
    assert sent == []
    out = capsys.readouterr().out
    steps = ['"EndpointName": "news-classifier-dev-0000be"', "# sagemaker-runtime.invoke_endpoint",
             '"news-classifier-dev": 0.9, "news-classifier-dev-0000be": 0.1', "# stage_config.set_model_variants",
             "# cloudformation.create_change_set", "chalice deploy --stage dev", "# smoke test",
             "# registry.promote"]
    positions = [out.index(step) for step in steps]
    assert positions == sorted(positions)
    assert (target.config_file.read_text(), target.registry.file.read_text()) == (config, registry_file)


def test_a_run_on_moto_makes_the_calls_its_dry_run_prints_in_order(
        tiny_model_dir: Path, tmp_path: Path, moto_url: str, moto_session: boto3.Session, sagemaker_settings: None,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The version's endpoint created on moto's SageMaker and tested, the stage's routing written, the infra stack and
    the API deployed (`chalice deploy` and the API's answers stood in for), the promotion recorded: every call in the
    order the dry run of the same promotion prints, each step's own call made."""
    target = aws_target(tmp_path, tiny_model_dir)
    options = aws_options(tmp_path, target)
    moto_session.client("s3").create_bucket(Bucket=options.stage.artifacts[0])
    answer_like_the_container(moto_url, target.version.path)
    show(promote_plan(target, options, dry_run=True, run=Recorder()).steps, as_comment)
    printed = printed_calls(capsys.readouterr().out, commented=True)

    logs: list[CallLog] = []  # the run's: the local writes are noted in it beside the AWS calls

    def noted(function: Callable[..., Any], call: tuple[str, str]) -> Callable[..., Any]:
        def note_then_call(*args: Any) -> Any:
            logs[-1].append(call)
            return function(*args)
        return note_then_call

    monkeypatch.setattr(canary, "set_model_variants", noted(canary.set_model_variants,
                                                            ("stage_config", "set_model_variants")))
    monkeypatch.setattr(ModelRegistry, "promote", noted(ModelRegistry.promote, ("registry", "promote")))
    with recorded_calls() as calls:
        logs.append(calls)
        plan = promote_plan(target, options, run=Recorder(moto_clients(moto_url).apigateway, calls),
                            fetch=FakeApi(log=calls))
        execute(plan.steps, PromotionClients.create("us-east-1"))
    assert_printed(calls, printed)
    assert {("sagemaker", "create_endpoint"), ("sagemaker-runtime", "invoke_endpoint"),
            ("stage_config", "set_model_variants"), ("cloudformation", "execute_change_set"), ("chalice", "deploy"),
            ("http", "POST"), ("registry", "promote")} <= set(calls)

    variants = {"news-classifier-dev": 0.9, "news-classifier-dev-0000be": 0.1}
    assert json.loads(stage_environment("dev", target.config_file)[MODEL_VARIANTS]) == variants
    assert "news-classifier-dev-0000be" in (target.config_file.parent / "policy-dev.json").read_text()
    assert target.registry.stage_variants("dev") == variants
    assert target.registry.read()["current"] == VERSION
    sagemaker = moto_session.client("sagemaker")
    assert sagemaker.describe_endpoint(EndpointName="news-classifier-dev-0000be")["EndpointStatus"] == "InService"
