"""`make deploy`'s chain (chalice_app/ops/deploy.py): the order of its steps, the S3 uploads on moto's server, the
CloudFormation change set as exact requests through botocore's Stubber (moto has no SAM transform), and a
dry run that needs no credentials."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chalice_app.ops.deploy import CAPABILITIES, DeployError, Options, Stage, deploy, main

BUCKET = "news-deploy"
STACK = "news-classifier-api-dev"
OUTPUTS = {"EndpointURL": "https://abc123.execute-api.us-east-1.amazonaws.com/dev/", "ApiKeyId": "k3y",
           "TransactionsTableName": "news-transactions-dev", "DashboardName": STACK,
           "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:alarms"}


class Recorder:
    """Records each command (command, cwd, env) in order; `chalice package` writes a stand-in zip and template."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Path, dict[str, str] | None]] = []

    def __call__(self, command: Sequence[str], cwd: Path, env: dict[str, str] | None) -> None:
        self.calls.append((list(command), cwd, env))
        if "package" in command:
            out = Path(command[-1])
            out.mkdir(parents=True)
            (out / "deployment.zip").write_bytes(b"zip bytes")
            (out / "sam.yaml").write_text("Resources: {APIHandler: {Properties: {CodeUri: ./deployment.zip}}}\n")


def stack_description(status: str) -> dict[str, Any]:
    return {"Stacks": [{"StackName": STACK, "StackStatus": status, "CreationTime": "2025-01-01T00:00:00Z",
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in OUTPUTS.items()]}]}


def expect_change_set(stub: Stubber, change_type: str) -> None:
    stub.add_response("create_change_set", {"Id": "cs-arn", "StackId": "stack-arn"},
                      {"StackName": STACK, "ChangeSetName": ANY, "TemplateURL": ANY, "ChangeSetType": change_type,
                       "Capabilities": CAPABILITIES, "Parameters": ANY, "Tags": ANY})
    stub.add_response("describe_change_set", {"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE"},
                      {"StackName": STACK, "ChangeSetName": ANY})
    stub.add_response("execute_change_set", {}, {"StackName": STACK, "ChangeSetName": ANY})


@pytest.fixture
def s3(moto_url: str, aws_credentials: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
    client.create_bucket(Bucket=BUCKET)
    return client


def options(model_dir: Path, skip_endpoint: bool = False) -> Options:
    return Options(Stage.load("dev"), model_dir, BUCKET, "us-east-1", ["--memory", "2048"], skip_endpoint, 0)


def test_chain_deploys_endpoint_then_package_then_stack(s3: Any, tmp_path: Path) -> None:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    run = Recorder()
    with Stubber(cfn) as stub:
        stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist")
        expect_change_set(stub, "CREATE")
        stub.add_response("describe_stacks", stack_description("CREATE_COMPLETE"), {"StackName": STACK})
        stub.add_response("describe_stacks", stack_description("CREATE_COMPLETE"), {"StackName": STACK})
        outputs = deploy(options(tmp_path), s3, cfn, run)
        stub.assert_no_pending_responses()
    assert outputs == OUTPUTS

    (endpoint, _, _), (package, _, env) = run.calls
    assert endpoint[1:] == ["-m", "model.deploy", "deploy", "--model-dir", str(tmp_path.resolve()), "--endpoint",
                            "news-classifier-dev", "--bucket", BUCKET, "--region", "us-east-1", "--memory", "2048"]
    assert package[1:5] == ["package", "--stage", "dev", "--merge-template"]
    assert env is not None and env["PIP_NO_DEPS"] == "1"

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert [k.rsplit(".", 1)[-1] for k in keys] == ["json", "zip"]
    uploaded = json.loads(s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read())
    assert uploaded["Resources"]["APIHandler"]["Properties"]["CodeUri"] == {"Bucket": BUCKET, "Key": keys[1]}
    assert s3.get_object(Bucket=BUCKET, Key=keys[1])["Body"].read() == b"zip bytes"


def test_existing_stack_is_updated_and_an_unchanged_one_is_left_alone(s3: Any, tmp_path: Path) -> None:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", stack_description("UPDATE_COMPLETE"), {"StackName": STACK})
        stub.add_response("create_change_set", {"Id": "cs-arn"}, {"StackName": STACK, "ChangeSetName": ANY,
                          "TemplateURL": ANY, "ChangeSetType": "UPDATE", "Capabilities": CAPABILITIES,
                          "Parameters": ANY, "Tags": ANY})
        stub.add_response("describe_change_set", {"Status": "FAILED", "StatusReason": "The submitted information "
                          "didn't contain changes. Submit different information to create a change set."},
                          {"StackName": STACK, "ChangeSetName": ANY})
        stub.add_response("describe_change_set", {"Status": "FAILED", "StatusReason": "The submitted information "
                          "didn't contain changes."}, {"StackName": STACK, "ChangeSetName": ANY})
        stub.add_response("delete_change_set", {}, {"StackName": STACK, "ChangeSetName": ANY})
        stub.add_response("describe_stacks", stack_description("UPDATE_COMPLETE"), {"StackName": STACK})
        assert deploy(options(tmp_path, skip_endpoint=True), s3, cfn, Recorder()) == OUTPUTS
        stub.assert_no_pending_responses()


def test_failed_change_set_stops_the_deployment(s3: Any, tmp_path: Path) -> None:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(cfn) as stub:
        stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist")
        stub.add_response("create_change_set", {"Id": "cs-arn"}, None)
        for _ in range(2):
            stub.add_response("describe_change_set", {"Status": "FAILED", "StatusReason": "Template error: boom"},
                              None)
        with pytest.raises(DeployError, match="Template error: boom"):
            deploy(options(tmp_path, skip_endpoint=True), s3, cfn, Recorder())


def test_dry_run_prints_every_step_without_credentials(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("SAGEMAKER_ROLE_ARN", "arn:aws:iam::123456789012:role/SageMakerInference")
    assert main(["--stage", "dev", "--model-dir", str(tiny_model_dir), "--bucket", BUCKET, "--region", "us-east-1",
                 "--dry-run"]) == 0
    out = capfd.readouterr().out
    steps = ["# endpoint", "sagemaker.create_model", "sagemaker-runtime.invoke_endpoint", "# chalice package",
             "# s3.upload_file", "# cloudformation.create_change_set", "execute_change_set"]
    positions = [out.index(step) for step in steps]
    assert positions == sorted(positions)
    assert '"ParameterValue": "news-transactions-dev"' in out and '"EndpointName": "news-classifier-dev"' in out


def test_unknown_or_local_stage_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stage", "local", "--bucket", BUCKET, "--region", "us-east-1", "--dry-run"]) == 2
    assert main(["--stage", "staging", "--bucket", BUCKET, "--region", "us-east-1", "--dry-run"]) == 2
    assert "no stage 'staging'" in capsys.readouterr().err


