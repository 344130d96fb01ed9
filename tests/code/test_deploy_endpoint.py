"""`model.deploy`: create, re-run, delete against moto's server (S3, SageMaker, SageMaker Runtime); the update,
failure and rollback paths, which moto does not implement, as exact requests through botocore's Stubber."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from model.artifact import read_metadata
from model.deploy import (
    JSON,
    SMOKE_HEADLINE,
    Clients,
    DeployError,
    Release,
    Serverless,
    deploy,
    main,
    update_endpoint,
)
from model.inference import input_fn, model_fn, output_fn, predict_fn
from model.labels import LabelMap

BUCKET = "news-models"
ROLE = "arn:aws:iam::123456789012:role/SageMakerInference"
ENDPOINT = "news-classifier-test"
CPU_IMAGE = ("763104351884.dkr.ecr.us-east-1.amazonaws.com/"
             "huggingface-pytorch-inference:2.6.0-transformers5.5.3-cpu-py312-ubuntu22.04")
LABELS = LabelMap.default().names
ARN = "arn:aws:sagemaker:us-east-1:123456789012"


@pytest.fixture
def aws(moto_url: str, aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    session = boto3.Session(region_name="us-east-1")
    session.client("s3").create_bucket(Bucket=BUCKET)
    return session


def answer_like_the_container(moto_url: str, model_dir: Path) -> dict[str, Any]:
    """Queue, as moto's runtime answer, what our SageMaker handler really returns for the test headline."""
    body = output_fn(predict_fn(input_fn(json.dumps({"inputs": [SMOKE_HEADLINE]}), JSON), model_fn(str(model_dir))),
                     JSON)
    request = urllib.request.Request(f"{moto_url}/moto-api/static/sagemaker/endpoint-results", method="POST",
                                     data=json.dumps({"results": [{"Body": body, "ContentType": JSON}]}).encode(),
                                     headers={"Content-Type": JSON})
    urllib.request.urlopen(request, timeout=10)
    return json.loads(body)


def deploy_argv(model_dir: Path, *extra: str) -> list[str]:
    return ["deploy", "--model-dir", str(model_dir), "--endpoint", ENDPOINT, "--bucket", BUCKET, "--role", ROLE,
            "--poll-seconds", "0", *extra]


def test_deploy_creates_a_serverless_endpoint_traceable_to_its_artifact(aws: boto3.Session, moto_url: str,
                                                                       tiny_model_copy: Path, tmp_path: Path) -> None:
    answer = answer_like_the_container(moto_url, tiny_model_copy)
    assert main(deploy_argv(tiny_model_copy, "--memory", "2048", "--max-concurrency", "4",
                            "--provisioned-concurrency", "1")) == 0
    sm, s3 = aws.client("sagemaker"), aws.client("s3")

    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["ProductionVariants"] == [{
        "VariantName": "AllTraffic", "ModelName": endpoint["EndpointConfigName"],
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 4, "ProvisionedConcurrency": 1}}]
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["Image"] == CPU_IMAGE
    assert model["ExecutionRoleArn"] == ROLE

    # From a transaction's model_version (the endpoint's answer) to the exact artifact in S3.
    version = answer["model_version"]
    assert version in endpoint["EndpointConfigName"]
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=model["ModelArn"])["Tags"]}
    assert tags["ModelVersion"] == version
    assert tags["ModelArtifact"] == model["PrimaryContainer"]["ModelDataUrl"] == \
        f"s3://{BUCKET}/news-classifier/models/{version}/model.tar.gz"
    archive = tmp_path / "model.tar.gz"
    s3.download_file(BUCKET, f"news-classifier/models/{version}/model.tar.gz", str(archive))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert read_metadata(tmp_path / "unpacked")["model_version"] == version
    assert (tmp_path / "unpacked" / "code" / "inference.py").is_file()


def test_rerun_with_the_same_settings_creates_nothing_new(aws: boto3.Session, moto_url: str,
                                                          tiny_model_copy: Path) -> None:
    answer_like_the_container(moto_url, tiny_model_copy)
    assert main(deploy_argv(tiny_model_copy)) == 0
    assert main(deploy_argv(tiny_model_copy)) == 0
    sm = aws.client("sagemaker")
    assert len(sm.list_models()["Models"]) == len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_endpoint_that_answers_wrongly_fails_the_deployment(aws: boto3.Session, tiny_model_copy: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    assert main(deploy_argv(tiny_model_copy)) == 2  # moto's default answer is not our response body
    assert "the test request failed" in caplog.text


def test_delete_removes_endpoint_configs_and_models_but_keeps_artifacts(aws: boto3.Session, moto_url: str,
                                                                        tiny_model_copy: Path) -> None:
    answer_like_the_container(moto_url, tiny_model_copy)
    assert main(deploy_argv(tiny_model_copy)) == 0
    sm = aws.client("sagemaker")
    neighbour = f"{ENDPOINT}-other-model"  # contains the endpoint's name but belongs to another endpoint
    sm.create_model(ModelName=neighbour, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": CPU_IMAGE},
                    Tags=[{"Key": "Endpoint", "Value": "another-endpoint"}])

    assert main(["delete", "--endpoint", ENDPOINT, "--poll-seconds", "0"]) == 0
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [neighbour]
    assert aws.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 2  # model.tar.gz, drift_baseline.json
    assert main(["delete", "--endpoint", ENDPOINT, "--poll-seconds", "0"]) == 0  # nothing left: still clean


# --- update and rollback: exact requests through Stubber -------------------------------------------------------

def release(version: str = "news-20250101-000000-abcdef12") -> Release:
    return Release(ENDPOINT, version, f"s3://{BUCKET}/news-classifier/models/{version}/model.tar.gz", CPU_IMAGE,
                   ROLE, Serverless())


def endpoint_state(status: str, config: str, reason: str | None = None) -> dict[str, Any]:
    state = {"EndpointName": ENDPOINT, "EndpointArn": f"{ARN}:endpoint/{ENDPOINT}",
             "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": "2025-01-01T00:00:00Z",
             "LastModifiedTime": "2025-01-01T00:00:00Z"}
    return state | ({"FailureReason": reason} if reason else {})


class Stubbed:
    """Stubbed SageMaker and SageMaker Runtime clients: each expected request is given with its answer."""

    def __init__(self, s3: Any = None) -> None:
        credentials = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
        self.clients = Clients(s3, boto3.client("sagemaker", **credentials),
                               boto3.client("sagemaker-runtime", **credentials))
        self.sm, self.runtime = Stubber(self.clients.sagemaker), Stubber(self.clients.runtime)
        self.sm.activate()
        self.runtime.activate()

    def describe(self, status: str, config: str, reason: str | None = None) -> None:
        self.sm.add_response("describe_endpoint", endpoint_state(status, config, reason), {"EndpointName": ENDPOINT})

    def update(self, config: str) -> None:
        self.sm.add_response("update_endpoint", {"EndpointArn": f"{ARN}:endpoint/{ENDPOINT}"},
                             {"EndpointName": ENDPOINT, "EndpointConfigName": config})

    def answer(self, model_version: str, label: str = "Business") -> None:
        body = json.dumps({"predictions": [{"label": label, "scores": {label: 1.0}}],
                           "model_version": model_version}).encode()
        self.runtime.add_response(
            "invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": JSON},
            {"EndpointName": ENDPOINT, "ContentType": JSON, "Accept": JSON,
             "Body": json.dumps({"inputs": [SMOKE_HEADLINE]})})

    def missing(self, operation: str, params: dict[str, str]) -> None:
        self.sm.add_client_error(operation, "ValidationException", f"Could not find {params}", 400,
                                 expected_params=params)

    def verify(self) -> None:
        self.sm.assert_no_pending_responses()
        self.runtime.assert_no_pending_responses()


def test_update_switches_once_the_new_version_answers() -> None:
    new, stub = release(), Stubbed()
    stub.update(new.name)
    stub.describe("Updating", "old-config")
    stub.describe("InService", new.name)
    stub.answer(new.model_version)

    update_endpoint(stub.clients, new, "old-config", LABELS, poll_seconds=0, timeout_seconds=60)
    stub.verify()


def test_wrong_answer_after_update_rolls_back_to_the_previous_config() -> None:
    new, stub = release(), Stubbed()
    stub.update(new.name)
    stub.describe("InService", new.name)
    stub.answer("news-some-other-version")
    stub.describe("InService", new.name)
    stub.update("old-config")
    stub.describe("Updating", "old-config")
    stub.describe("InService", "old-config")

    with pytest.raises(DeployError, match=r"answered model 'news-some-other-version'.*serves old-config again"):
        update_endpoint(stub.clients, new, "old-config", LABELS, poll_seconds=0, timeout_seconds=60)
    stub.verify()


def test_label_outside_the_model_labels_fails_the_update() -> None:
    new, stub = release(), Stubbed()
    stub.update(new.name)
    stub.describe("InService", new.name)
    stub.answer(new.model_version, label="Sports")
    stub.describe("InService", "old-config")  # already back: no second update call

    with pytest.raises(DeployError, match="label 'Sports'"):
        update_endpoint(stub.clients, new, "old-config", LABELS, poll_seconds=0, timeout_seconds=60)
    stub.verify()


def test_update_that_sagemaker_reverted_is_reported_without_a_second_update() -> None:
    new, stub = release(), Stubbed()
    stub.update(new.name)
    stub.describe("Updating", "old-config")
    stub.describe("InService", "old-config", "The primary container for production variant failed the ping")
    stub.describe("InService", "old-config", "The primary container for production variant failed the ping")

    with pytest.raises(DeployError, match="SageMaker kept old-config: The primary container"):
        update_endpoint(stub.clients, new, "old-config", LABELS, poll_seconds=0, timeout_seconds=60)
    stub.verify()


def test_failed_rollback_is_reported() -> None:
    new, stub = release(), Stubbed()
    stub.update(new.name)
    stub.describe("Failed", new.name, "image not found")
    stub.describe("Failed", new.name, "image not found")
    stub.update("old-config")
    stub.describe("Failed", "old-config", "account quota")

    with pytest.raises(DeployError, match="rollback to old-config failed too"):
        update_endpoint(stub.clients, new, "old-config", LABELS, poll_seconds=0, timeout_seconds=60)
    stub.verify()


def test_deploying_a_new_version_updates_the_existing_endpoint(aws: boto3.Session, tiny_model_copy: Path) -> None:
    """The whole deploy: real upload to moto's S3, then exactly these SageMaker requests."""
    version = read_metadata(tiny_model_copy)["model_version"]
    new, stub = release(version), Stubbed(s3=aws.client("s3"))
    stub.missing("describe_model", {"ModelName": new.name})
    stub.sm.add_response("create_model", {"ModelArn": f"{ARN}:model/{new.name}"}, new.model_request())
    stub.missing("describe_endpoint_config", {"EndpointConfigName": new.name})
    stub.sm.add_response("create_endpoint_config", {"EndpointConfigArn": f"{ARN}:endpoint-config/{new.name}"},
                         new.endpoint_config_request())
    stub.describe("InService", "old-config")
    stub.describe("InService", "old-config")
    stub.update(new.name)
    stub.describe("InService", new.name)
    stub.answer(version)

    deploy(stub.clients, new, tiny_model_copy, BUCKET, f"news-classifier/models/{version}/model.tar.gz",
           poll_seconds=0)
    stub.verify()
    assert aws.client("s3").head_object(Bucket=BUCKET, Key=f"news-classifier/models/{version}/model.tar.gz")
    assert aws.client("s3").head_object(Bucket=BUCKET, Key=f"news-classifier/models/{version}/drift_baseline.json")


def test_failed_endpoint_is_not_updated(aws: boto3.Session, tiny_model_copy: Path) -> None:
    new, stub = release(read_metadata(tiny_model_copy)["model_version"]), Stubbed(s3=aws.client("s3"))
    stub.sm.add_response("describe_model", {"ModelName": new.name, "ModelArn": f"{ARN}:model/{new.name}",
                                            "CreationTime": "2025-01-01", "ExecutionRoleArn": ROLE},
                         {"ModelName": new.name})
    stub.sm.add_response("describe_endpoint_config", {
        "EndpointConfigName": new.name, "EndpointConfigArn": f"{ARN}:endpoint-config/{new.name}",
        "ProductionVariants": new.endpoint_config_request()["ProductionVariants"], "CreationTime": "2025-01-01"},
        {"EndpointConfigName": new.name})
    stub.describe("Failed", "old-config", "capacity")
    stub.describe("Failed", "old-config", "capacity")

    with pytest.raises(DeployError, match=r"is Failed.*delete it first"):
        deploy(stub.clients, new, tiny_model_copy, BUCKET, "key/model.tar.gz", poll_seconds=0)
    stub.verify()


# --- inputs, names and the dry run ------------------------------------------------------------------------------

@pytest.mark.parametrize(("settings", "message"), [
    ({"memory_mb": 1000}, "--memory 1000"),
    ({"memory_mb": 8192}, "--memory 8192"),
    ({"max_concurrency": 0}, "--max-concurrency 0"),
    ({"max_concurrency": 201}, "--max-concurrency 201"),
    ({"max_concurrency": 5, "provisioned_concurrency": 6}, "--provisioned-concurrency 6"),
])
def test_serverless_limits_are_checked(settings: dict[str, int], message: str) -> None:
    with pytest.raises(DeployError, match=message):
        Serverless(**settings)


def test_serverless_config_request() -> None:
    assert Serverless(6144, 20).request() == {"MemorySizeInMB": 6144, "MaxConcurrency": 20}
    assert Serverless(1024, 2, 1).request() == {"MemorySizeInMB": 1024, "MaxConcurrency": 2,
                                                "ProvisionedConcurrency": 1}


def test_names_carry_the_version_and_change_with_the_settings() -> None:
    base = release()
    assert base.name.startswith(f"{ENDPOINT}-{base.model_version}-")
    assert base.name == release().name
    assert base.name != Release(base.endpoint, base.model_version, base.artifact_uri, base.image_uri, base.role_arn,
                                Serverless(memory_mb=4096)).name
    with pytest.raises(DeployError, match="shorten the endpoint name to 26"):
        Release("e" * 40, base.model_version, base.artifact_uri, CPU_IMAGE, ROLE, Serverless())
    with pytest.raises(DeployError, match="endpoint name 'news_classifier'"):
        Release("news_classifier", base.model_version, base.artifact_uri, CPU_IMAGE, ROLE, Serverless())


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials anywhere, and any attempt to send a request fails the test."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a dry run sent an AWS request")

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", refuse)


def test_dry_run_prints_every_call_without_credentials(no_aws: None, tiny_model_dir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    version = read_metadata(tiny_model_dir)["model_version"]
    assert main(["deploy", "--dry-run", "--region", "eu-west-1", "--model-dir", str(tiny_model_dir),
                 "--endpoint", ENDPOINT, "--bucket", BUCKET, "--role", ROLE]) == 0
    out = capsys.readouterr().out
    calls = [line.split()[0] for line in out.splitlines() if line[:1].isalpha()]
    assert calls == ["s3.upload_file", "s3.upload_file", "sagemaker.create_model", "sagemaker.create_endpoint_config",
                     "sagemaker.describe_endpoint", "sagemaker.create_endpoint", "sagemaker.update_endpoint",
                     "sagemaker.describe_endpoint", "sagemaker-runtime.invoke_endpoint"]
    assert f"news-classifier/models/{version}/model.tar.gz" in out
    assert "763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-inference:" in out

    assert main(["delete", "--dry-run", "--region", "eu-west-1", "--endpoint", ENDPOINT]) == 0
    assert "sagemaker.delete_endpoint" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--role", ROLE], "--bucket"),
    (["--bucket", BUCKET], "--role"),
])
def test_missing_settings_are_clear_errors(no_aws: None, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                           argv: list[str], message: str, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("SAGEMAKER_BUCKET", raising=False)
    monkeypatch.delenv("SAGEMAKER_ROLE_ARN", raising=False)
    assert main(["deploy", "--dry-run", "--region", "us-east-1", "--model-dir", str(tiny_model_dir),
                 "--endpoint", ENDPOINT, *argv]) == 2
    assert message in caplog.text


def test_folder_without_a_model_is_a_clear_error(no_aws: None, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    assert main(["deploy", "--dry-run", "--region", "us-east-1", "--model-dir", str(tmp_path),
                 "--endpoint", ENDPOINT, "--bucket", BUCKET, "--role", ROLE]) == 2
    assert "training.json: missing" in caplog.text
