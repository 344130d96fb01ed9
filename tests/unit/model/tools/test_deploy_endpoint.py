"""`model.tools.deploy_endpoint`: create, re-run, update, delete against moto's server (S3, ECR, SageMaker, SageMaker
Runtime,
with tests/support/moto_aws.py's UpdateEndpoint); the failure and rollback paths, which moto cannot produce, as exact
requests through botocore's Stubber; each run's calls against its dry run's. Docker
cannot run here: the slim image's build and push are checked as the exact commands given to a `docker` on PATH
that records them (the image itself is proven in test_image_build.py)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import sys
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
from model.labels import LabelMap
from model.runtime import ONNX_INT8, TORCH
from model.serving.inference import JSON, input_fn, model_fn, output_fn, predict_fn
from model.tools.deploy_endpoint import main
from model.tools.endpoint import SMOKE_HEADLINE, SageMakerClients, deploy, update_endpoint
from model.tools.image import (
    DOCKERFILE,
    HUGGING_FACE_ENVIRONMENT,
    REPO_ROOT,
    content_tag,
    huggingface_image,
    slim_image,
)
from model.tools.release import Release, ReleaseError, Serverless
from tests.support.recorded_calls import assert_all_made, assert_printed, run_then_dry_run

BUCKET = "news-models"
ROLE = "arn:aws:iam::123456789012:role/SageMakerInference"
ENDPOINT = "news-classifier-test"
CPU_IMAGE = ("763104351884.dkr.ecr.us-east-1.amazonaws.com/"
             "huggingface-pytorch-inference:2.6.0-transformers5.5.3-cpu-py312-ubuntu22.04")
HF_IMAGE = huggingface_image("us-east-1")
LABELS = LabelMap.default().names
ARN = "arn:aws:sagemaker:us-east-1:123456789012"
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
REPOSITORY = "news-classifier-test"
# Records each call (arguments, and stdin for --password-stdin) as JSON; fails the subcommand in FAKE_DOCKER_FAIL. A
# push puts the image into moto's ECR (AWS_ENDPOINT_URL) as a registry receives it, with a layer digest of the tag.
FAKE_DOCKER = """#!{python}
import hashlib, json, os, sys
log = os.environ["FAKE_DOCKER_LOG"]
calls = json.load(open(log)) if os.path.exists(log) else []
calls.append({{"argv": sys.argv[1:], "stdin": sys.stdin.read() if "--password-stdin" in sys.argv else ""}})
json.dump(calls, open(log, "w"))
if sys.argv[1] == os.environ.get("FAKE_DOCKER_FAIL"):
    sys.exit(1)
if sys.argv[1] == "push":
    import boto3
    repository, tag = sys.argv[2].split("/", 1)[1].rsplit(":", 1)
    layer = "sha256:" + hashlib.sha256(sys.argv[2].encode()).hexdigest()
    manifest = {{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "layers": [{{"digest": layer}}]}}
    boto3.client("ecr", region_name="us-east-1").put_image(repositoryName=repository, imageTag=tag,
                                                           imageManifest=json.dumps(manifest))
"""


@pytest.fixture
def aws(moto_session: boto3.Session) -> boto3.Session:
    moto_session.client("s3").create_bucket(Bucket=BUCKET)
    return moto_session


@pytest.fixture
def tiny_onnx_model_copy(tmp_path: Path, tiny_onnx_model_dir: Path) -> Path:
    return Path(shutil.copytree(tiny_onnx_model_dir, tmp_path / "onnx-model"))


@pytest.fixture
def no_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


@pytest.fixture
def docker_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `docker` first on PATH that records its calls in the returned file (and answers `docker info`)."""
    fake = tmp_path / "fake-bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(FAKE_DOCKER.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "docker-calls.json"))
    return tmp_path / "docker-calls.json"


def digest_of(ecr: Any, tag: str) -> str:
    """The registry's digest of the image REPOSITORY:tag."""
    return ecr.describe_images(repositoryName=REPOSITORY, imageIds=[{"imageTag": tag}])["imageDetails"][0][
        "imageDigest"]


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


def unpacked_artifact(s3: Any, key: str, target: Path) -> Path:
    archive = target.with_suffix(".tar.gz")
    s3.download_file(BUCKET, key, str(archive))
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def served_by(sm: Any, model_version: str) -> dict[str, Any]:
    """From a transaction's model_version to the Model that served it: image, runtime, artifact (describe + tags)."""
    (summary,) = sm.list_models(NameContains=model_version)["Models"]
    model = sm.describe_model(ModelName=summary["ModelName"])
    return model | {"Tags": {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=model["ModelArn"])["Tags"]}}


def test_deploy_without_docker_serves_pytorch_on_the_hugging_face_image(
        aws: boto3.Session, moto_url: str, tiny_onnx_model_copy: Path, tmp_path: Path, no_docker: None,
        caplog: pytest.LogCaptureFixture) -> None:
    answer = answer_like_the_container(moto_url, tiny_onnx_model_copy)
    assert main(deploy_argv(tiny_onnx_model_copy, "--memory", "2048", "--max-concurrency", "4",
                            "--provisioned-concurrency", "1", "--ecr-repository", REPOSITORY)) == 0
    assert "docker is not installed" in caplog.text and "falling back to the Hugging Face PyTorch image" in caplog.text
    sm, s3 = aws.client("sagemaker"), aws.client("s3")

    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["ProductionVariants"] == [{
        "VariantName": "AllTraffic", "ModelName": endpoint["EndpointConfigName"],
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 4, "ProvisionedConcurrency": 1}}]
    config_tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=config["EndpointConfigArn"])["Tags"]}
    assert (config_tags["ServingImage"], config_tags["ModelRuntime"]) == (CPU_IMAGE, TORCH)

    # From a transaction's model_version (the endpoint's answer) to the image, the runtime and the artifact.
    version = answer["model_version"]
    model = served_by(sm, version)
    assert model["ModelName"] == endpoint["EndpointConfigName"] and version in model["ModelName"]
    assert model["PrimaryContainer"]["Image"] == model["Tags"]["ServingImage"] == CPU_IMAGE
    assert model["PrimaryContainer"]["Environment"] == HUGGING_FACE_ENVIRONMENT | {"MODEL_RUNTIME": TORCH}
    assert model["ExecutionRoleArn"] == ROLE
    key = f"news-classifier/models/{version}/model-torch.tar.gz"
    assert model["Tags"]["ModelArtifact"] == model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{BUCKET}/{key}"
    unpacked = unpacked_artifact(s3, key, tmp_path / "unpacked")
    assert read_metadata(unpacked)["model_version"] == version
    assert read_metadata(unpacked)["runtimes"] == {TORCH: ["model.safetensors"]}
    assert (unpacked / "code" / "inference.py").is_file() and (unpacked / "model.safetensors").is_file()
    assert not list(unpacked.glob("*.onnx"))


def test_deploy_with_docker_builds_pushes_and_serves_the_slim_image(
        aws: boto3.Session, moto_url: str, tiny_onnx_model_copy: Path, tmp_path: Path, docker_log: Path) -> None:
    repository = aws.client("ecr").create_repository(repositoryName=REPOSITORY)["repository"]["repositoryUri"]
    answer = answer_like_the_container(moto_url, tiny_onnx_model_copy)
    assert main(deploy_argv(tiny_onnx_model_copy, "--ecr-repository", REPOSITORY)) == 0

    image = f"{repository}:{content_tag()}"
    registry = aws.client("ecr").get_authorization_token()["authorizationData"][0]["proxyEndpoint"]
    user, password = base64.b64decode(aws.client("ecr").get_authorization_token()["authorizationData"][0][
        "authorizationToken"]).decode().split(":", 1)
    assert json.loads(docker_log.read_text()) == [
        {"argv": ["info", "--format", "{{.ServerVersion}}"], "stdin": ""},
        {"argv": ["build", "--platform", "linux/amd64", "-f", str(DOCKERFILE), "-t", image, str(REPO_ROOT)],
         "stdin": ""},
        {"argv": ["login", "--username", user, "--password-stdin", registry], "stdin": password},
        {"argv": ["push", image], "stdin": ""}]

    sm = aws.client("sagemaker")
    model = served_by(sm, answer["model_version"])
    # By the digest ECR holds for the pushed tag, not by the tag: a later push cannot change what this Model serves.
    assert model["PrimaryContainer"]["Image"] == model["Tags"]["ServingImage"] == \
        f"{repository}@{digest_of(aws.client('ecr'), content_tag())}"
    assert model["PrimaryContainer"]["Environment"] == {"MODEL_RUNTIME": ONNX_INT8} == \
        {"MODEL_RUNTIME": model["Tags"]["ModelRuntime"]}
    key = f"news-classifier/models/{answer['model_version']}/model-onnx-int8.tar.gz"
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{BUCKET}/{key}"
    unpacked = unpacked_artifact(aws.client("s3"), key, tmp_path / "unpacked")
    assert read_metadata(unpacked)["runtimes"] == {ONNX_INT8: ["model.int8.onnx", "tokenizer.json"]}
    assert not (unpacked / "code").exists() and not (unpacked / "model.safetensors").exists()
    assert not (unpacked / "model.onnx").exists() and (unpacked / "model.int8.onnx").is_file()


def test_an_image_already_pushed_is_not_built_again(aws: boto3.Session, moto_url: str, tiny_onnx_model_copy: Path,
                                                    docker_log: Path) -> None:
    ecr = aws.client("ecr")
    repository = ecr.create_repository(repositoryName=REPOSITORY)["repository"]["repositoryUri"]
    digest = ecr.put_image(repositoryName=REPOSITORY, imageTag=content_tag(), imageManifest=json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "layers": []}))[
        "image"]["imageId"]["imageDigest"]
    answer_like_the_container(moto_url, tiny_onnx_model_copy)
    assert main(deploy_argv(tiny_onnx_model_copy, "--ecr-repository", repository)) == 0  # by URI, as infra outputs
    assert [call["argv"][0] for call in json.loads(docker_log.read_text())] == ["info"]
    (model,) = aws.client("sagemaker").list_models()["Models"]
    assert aws.client("sagemaker").describe_model(ModelName=model["ModelName"])["PrimaryContainer"]["Image"] == \
        f"{repository}@{digest}"


def test_the_image_step_alone_prints_the_image_that_deploy_then_serves(
        aws: boto3.Session, moto_url: str, tiny_onnx_model_copy: Path, docker_log: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """As a chain runs it: `image` (build and push), then `deploy --image-uri` with what it printed."""
    repository = aws.client("ecr").create_repository(repositoryName=REPOSITORY)["repository"]["repositoryUri"]
    assert main(["image", "--ecr-repository", repository]) == 0
    image = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert image == {"kind": "slim", "uri": f"{repository}@{digest_of(aws.client('ecr'), content_tag())}",
                     "runtime": ONNX_INT8}
    assert [call["argv"][0] for call in json.loads(docker_log.read_text())] == ["info", "build", "login", "push"]

    answer = answer_like_the_container(moto_url, tiny_onnx_model_copy)
    assert main(deploy_argv(tiny_onnx_model_copy, "--image-uri", image["uri"])) == 0
    model = served_by(aws.client("sagemaker"), answer["model_version"])
    assert (model["PrimaryContainer"]["Image"], model["Tags"]["ModelRuntime"]) == (image["uri"], image["runtime"])
    assert len(json.loads(docker_log.read_text())) == 4  # deploy built nothing more


def test_an_image_given_by_tag_is_served_by_the_digest_the_tag_names_now(
        aws: boto3.Session, moto_url: str, tiny_onnx_model_copy: Path) -> None:
    ecr = aws.client("ecr")
    repository = ecr.create_repository(repositoryName=REPOSITORY)["repository"]["repositoryUri"]
    digest = ecr.put_image(repositoryName=REPOSITORY, imageTag="release-1", imageManifest=json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "layers": [{"digest": f"sha256:{'1' * 64}"}]}))["image"]["imageId"]["imageDigest"]
    answer = answer_like_the_container(moto_url, tiny_onnx_model_copy)
    assert main(deploy_argv(tiny_onnx_model_copy, "--image-uri", f"{repository}:release-1")) == 0
    assert served_by(aws.client("sagemaker"), answer["model_version"])["PrimaryContainer"]["Image"] == \
        f"{repository}@{digest}"


@pytest.mark.parametrize(("image_uri", "message"), [
    (f"{ECR}/{REPOSITORY}:never-pushed", "ECR has no image tagged 'never-pushed'"),
    (f"{ECR}/not-a-repository:serve-1", "ECR has no repository 'not-a-repository'"),
    ("docker.io/library/python:3.11", "not an ECR image"),
])
def test_an_image_that_cannot_be_pinned_is_a_clear_error_before_anything_is_deployed(
        aws: boto3.Session, tiny_onnx_model_copy: Path, caplog: pytest.LogCaptureFixture, image_uri: str,
        message: str) -> None:
    aws.client("ecr").create_repository(repositoryName=REPOSITORY)
    assert main(deploy_argv(tiny_onnx_model_copy, "--image-uri", image_uri)) == 2
    assert message in caplog.text
    assert aws.client("sagemaker").list_models()["Models"] == []
    assert aws.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_the_image_step_without_docker_names_the_fallback(no_aws: None, no_docker: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["image", "--region", "eu-west-1", "--ecr-repository", REPOSITORY, "--dry-run"]) == 0
    image = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert image == {"kind": "huggingface", "uri": huggingface_image("eu-west-1").uri, "runtime": TORCH}


def test_a_missing_repository_is_a_clear_error_before_anything_is_deployed(
        aws: boto3.Session, tiny_onnx_model_copy: Path, docker_log: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert main(deploy_argv(tiny_onnx_model_copy, "--ecr-repository", REPOSITORY)) == 2
    assert f"ECR repository '{REPOSITORY}' does not exist" in caplog.text
    assert aws.client("sagemaker").list_models()["Models"] == []
    assert aws.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_a_failed_build_stops_the_deployment(aws: boto3.Session, tiny_onnx_model_copy: Path, docker_log: Path,
                                             monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    aws.client("ecr").create_repository(repositoryName=REPOSITORY)
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "build")
    assert main(deploy_argv(tiny_onnx_model_copy, "--ecr-repository", REPOSITORY)) == 2
    assert "`docker build --platform linux/amd64" in caplog.text and "failed" in caplog.text
    assert aws.client("sagemaker").list_models()["Models"] == []


def test_the_slim_image_needs_the_int8_model(aws: boto3.Session, tiny_model_copy: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    assert main(deploy_argv(tiny_model_copy, "--image-uri", f"{ECR}/{REPOSITORY}@sha256:{'0' * 64}")) == 2
    assert "has no onnx-int8 model for the slim image" in caplog.text and "make export-onnx" in caplog.text


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
    return Release(ENDPOINT, version, f"s3://{BUCKET}/news-classifier/models/{version}/model-torch.tar.gz", HF_IMAGE,
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
        self.clients = SageMakerClients(s3, boto3.client("sagemaker", **credentials),
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

    with pytest.raises(ReleaseError, match=r"answered model 'news-some-other-version'.*serves old-config again"):
        update_endpoint(stub.clients, new, "old-config", LABELS, poll_seconds=0, timeout_seconds=60)
    stub.verify()


def test_label_outside_the_model_labels_fails_the_update() -> None:
    new, stub = release(), Stubbed()
    stub.update(new.name)
    stub.describe("InService", new.name)
    stub.answer(new.model_version, label="Sports")
    stub.describe("InService", "old-config")  # already back: no second update call

    with pytest.raises(ReleaseError, match="label 'Sports'"):
        update_endpoint(stub.clients, new, "old-config", LABELS, poll_seconds=0, timeout_seconds=60)
    stub.verify()


def test_update_that_sagemaker_reverted_is_reported_without_a_second_update() -> None:
    new, stub = release(), Stubbed()
    stub.update(new.name)
    stub.describe("Updating", "old-config")
    stub.describe("InService", "old-config", "The primary container for production variant failed the ping")
    stub.describe("InService", "old-config", "The primary container for production variant failed the ping")

    with pytest.raises(ReleaseError, match="SageMaker kept old-config: The primary container"):
        update_endpoint(stub.clients, new, "old-config", LABELS, poll_seconds=0, timeout_seconds=60)
    stub.verify()


def test_failed_rollback_is_reported() -> None:
    new, stub = release(), Stubbed()
    stub.update(new.name)
    stub.describe("Failed", new.name, "image not found")
    stub.describe("Failed", new.name, "image not found")
    stub.update("old-config")
    stub.describe("Failed", "old-config", "account quota")

    with pytest.raises(ReleaseError, match="rollback to old-config failed too"):
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

    with pytest.raises(ReleaseError, match=r"is Failed.*delete it first"):
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
    with pytest.raises(ReleaseError, match=message):
        Serverless(**settings)


def test_serverless_config_request() -> None:
    assert Serverless(6144, 20).request() == {"MemorySizeInMB": 6144, "MaxConcurrency": 20}
    assert Serverless(1024, 2, 1).request() == {"MemorySizeInMB": 1024, "MaxConcurrency": 2,
                                                "ProvisionedConcurrency": 1}


def test_names_carry_the_version_and_change_with_the_settings() -> None:
    base = release()
    assert base.name.startswith(f"{ENDPOINT}-{base.model_version}-")
    assert base.name == release().name
    assert base.name != Release(base.endpoint, base.model_version, base.artifact_uri, base.image, base.role_arn,
                                Serverless(memory_mb=4096)).name
    assert base.name != Release(base.endpoint, base.model_version, base.artifact_uri, slim_image(f"{ECR}/r:1"),
                                base.role_arn, Serverless()).name
    with pytest.raises(ReleaseError, match="shorten the endpoint name to 26"):
        Release("e" * 40, base.model_version, base.artifact_uri, HF_IMAGE, ROLE, Serverless())
    with pytest.raises(ReleaseError, match="endpoint name 'news_classifier'"):
        Release("news_classifier", base.model_version, base.artifact_uri, HF_IMAGE, ROLE, Serverless())


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


DEPLOY_CALLS = ["s3.upload_file", "s3.upload_file", "sagemaker.describe_model", "sagemaker.create_model",
                "sagemaker.describe_endpoint_config", "sagemaker.create_endpoint_config",
                "sagemaker.describe_endpoint", "sagemaker.create_endpoint", "sagemaker.update_endpoint",
                "sagemaker.describe_endpoint", "sagemaker-runtime.invoke_endpoint"]


def dry_run(model_dir: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[list[str], str]:
    assert main(["deploy", "--dry-run", "--region", "eu-west-1", "--model-dir", str(model_dir),
                 "--endpoint", ENDPOINT, "--bucket", BUCKET, "--role", ROLE, *extra]) == 0
    out = capsys.readouterr().out
    return [line.split()[0] for line in out.splitlines() if line[:1].isalpha()], out


def test_dry_run_prints_every_call_without_credentials(no_aws: None, no_docker: None, tiny_onnx_model_dir: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    version = read_metadata(tiny_onnx_model_dir)["model_version"]
    calls, out = dry_run(tiny_onnx_model_dir, capsys, "--ecr-repository", REPOSITORY)
    assert calls == DEPLOY_CALLS
    assert f"news-classifier/models/{version}/model-torch.tar.gz" in out
    assert "763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-inference:" in out
    assert "falling back to the Hugging Face PyTorch image" in caplog.text

    assert main(["delete", "--dry-run", "--region", "eu-west-1", "--endpoint", ENDPOINT]) == 0
    assert "sagemaker.delete_endpoint" in capsys.readouterr().out


def test_a_docker_whose_daemon_does_not_answer_falls_back_to_the_hugging_face_image(
        no_aws: None, docker_log: Path, tiny_onnx_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "info")
    calls, out = dry_run(tiny_onnx_model_dir, capsys, "--ecr-repository", REPOSITORY)
    assert calls == DEPLOY_CALLS and "huggingface-pytorch-inference" in out
    assert "the docker daemon does not answer" in caplog.text


def test_the_hugging_face_image_named_outright_serves_pytorch(no_aws: None, tiny_onnx_model_dir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    uri = huggingface_image("eu-west-1").uri
    _, out = dry_run(tiny_onnx_model_dir, capsys, "--image-uri", uri)
    assert f'"Image": "{uri}"' in out and '"MODEL_RUNTIME": "torch"' in out and "model-torch.tar.gz" in out


def test_dry_run_with_docker_prints_the_build_and_push_and_runs_neither(
        no_aws: None, docker_log: Path, tiny_onnx_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls, out = dry_run(tiny_onnx_model_dir, capsys, "--ecr-repository", REPOSITORY)
    assert calls == ["ecr.describe_repositories", "ecr.describe_images", "docker.build", "ecr.get_authorization_token",
                     "docker.login", "docker.push", "ecr.describe_images", *DEPLOY_CALLS]
    image = f"<account>.dkr.ecr.eu-west-1.amazonaws.com/{REPOSITORY}@<digest of {content_tag()}>"
    assert f'"Image": "{image}"' in out and '"MODEL_RUNTIME": "onnx-int8"' in out
    assert "model-onnx-int8.tar.gz" in out
    assert [call["argv"][0] for call in json.loads(docker_log.read_text())] == ["info"]


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


# --- one code path: what a run makes is what its dry run prints ------------------------------------------------

def docker_calls(log: Path, since: int) -> list[tuple[str, str]]:
    """The docker commands run after the first `since`, but for `docker info`: the probe that picks the image, which
    a dry run makes too."""
    entries = json.loads(log.read_text())[since:] if log.exists() else []
    return [("docker", entry["argv"][0]) for entry in entries if entry["argv"][0] != "info"]


def test_a_dry_run_prints_every_call_that_deploying_and_deleting_make(
        aws: boto3.Session, moto_url: str, tiny_onnx_model_copy: Path, docker_log: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Real runs on moto: a first deployment (the slim image built and pushed), an update to new settings, the
    deletion. Each makes only calls that the dry run of the same command prints, in the printed order, and the dry run
    sends none; every call the dry runs print, one of the runs makes."""
    aws.client("ecr").create_repository(repositoryName=REPOSITORY)
    answer_like_the_container(moto_url, tiny_onnx_model_copy)
    deploy_args = deploy_argv(tiny_onnx_model_copy, "--ecr-repository", REPOSITORY)
    delete_args = ["delete", "--endpoint", ENDPOINT, "--poll-seconds", "0"]
    made: list[tuple[str, str]] = []
    printed: list[tuple[str, str]] = []
    for argv in (deploy_args, [*deploy_args, "--memory", "2048"], delete_args):
        commands = len(json.loads(docker_log.read_text())) if docker_log.exists() else 0
        calls, shown = run_then_dry_run(main, argv, capsys)
        assert_printed(docker_calls(docker_log, commands), shown)
        made += [*calls, *docker_calls(docker_log, commands)]
        printed += shown
    assert ("sagemaker", "update_endpoint") in made
    assert_all_made(printed, made)
