"""Serve a model folder from a SageMaker Serverless Inference endpoint: create, update without downtime, delete.

    python -m model.tools.deploy deploy|image|delete ...

Names carry the model version, so a transaction's `model_version` finds the artifact, image and runtime that
served it; a failed update goes back to the previous config (docs/aws-deployment.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from tqdm.auto import tqdm

from model.artifact import DRIFT_BASELINE_FILE, pack, read_metadata
from model.labels import LabelMap
from model.runtime import ONNX_INT8
from model.serving.inference import JSON
from model.tools.image import (
    ImageError,
    ServingImage,
    build_command,
    by_digest,
    choose,
    content_tag,
    ecr_image,
    login_command,
    push_command,
    repository_name,
)

log = logging.getLogger("model.tools.deploy")

MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_CONCURRENCY = 200
NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's rule for endpoint, config and model names
IN_PROGRESS = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
SMOKE_HEADLINE = "Stocks rally as the central bank holds interest rates"
VARIANT = "AllTraffic"


class DeployError(RuntimeError):
    """The deployment cannot go ahead or did not become healthy; the message says why."""


@dataclass(frozen=True)
class Serverless:
    """The endpoint's ServerlessConfig, checked against SageMaker's limits before any call."""

    memory_mb: int = 3072
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.memory_mb not in MEMORY_SIZES_MB:
            raise DeployError(f"--memory {self.memory_mb}: choose one of {', '.join(map(str, MEMORY_SIZES_MB))} MB")
        if not 1 <= self.max_concurrency <= MAX_CONCURRENCY:
            raise DeployError(f"--max-concurrency {self.max_concurrency}: must be 1 to {MAX_CONCURRENCY}")
        if self.provisioned_concurrency is not None and not 1 <= self.provisioned_concurrency <= self.max_concurrency:
            raise DeployError(f"--provisioned-concurrency {self.provisioned_concurrency}: must be 1 to "
                              f"--max-concurrency ({self.max_concurrency})")

    def request(self) -> dict[str, int]:
        config = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        if self.provisioned_concurrency:
            config["ProvisionedConcurrency"] = self.provisioned_concurrency
        return config


@dataclass(frozen=True)
class Release:
    """One model version on one endpoint: every name, tag and request of a deployment derives from it."""

    endpoint: str
    model_version: str
    artifact_uri: str
    image: ServingImage
    role_arn: str
    serverless: Serverless

    def __post_init__(self) -> None:
        if not NAME.match(self.endpoint):
            raise DeployError(f"endpoint name {self.endpoint!r}: letters, digits and single hyphens, at most 63")
        if len(self.name) > 63:
            raise DeployError(f"{self.name!r} is longer than SageMaker's 63 characters: shorten the endpoint name "
                              f"to {63 - len(self.name) + len(self.endpoint)} characters")
        if not NAME.match(self.name):
            raise DeployError(f"model version {self.model_version!r}: letters, digits and single hyphens only")

    @property
    def name(self) -> str:
        """Model and EndpointConfig name: readable version, plus a digest so changed settings get a new config."""
        settings = json.dumps([self.artifact_uri, self.image.uri, self.role_arn, asdict(self.serverless),
                               self.image.environment], sort_keys=True)
        return f"{self.endpoint}-{self.model_version}-{hashlib.sha256(settings.encode()).hexdigest()[:6]}"

    def tags(self) -> list[dict[str, str]]:
        return [{"Key": "Endpoint", "Value": self.endpoint}, {"Key": "ModelVersion", "Value": self.model_version},
                {"Key": "ModelArtifact", "Value": self.artifact_uri}, {"Key": "ServingImage", "Value": self.image.uri},
                {"Key": "ModelRuntime", "Value": self.image.runtime}]

    def model_request(self) -> dict[str, Any]:
        return {"ModelName": self.name, "ExecutionRoleArn": self.role_arn, "Tags": self.tags(),
                "PrimaryContainer": {"Image": self.image.uri, "ModelDataUrl": self.artifact_uri,
                                     "Environment": self.image.environment}}

    def endpoint_config_request(self) -> dict[str, Any]:
        return {"EndpointConfigName": self.name, "Tags": self.tags(),
                "ProductionVariants": [{"VariantName": VARIANT, "ModelName": self.name,
                                        "ServerlessConfig": self.serverless.request()}]}

    def endpoint_request(self) -> dict[str, Any]:
        return {"EndpointName": self.endpoint, "EndpointConfigName": self.name,
                "Tags": [{"Key": "Endpoint", "Value": self.endpoint}]}


class Clients(NamedTuple):
    s3: Any
    sagemaker: Any
    runtime: Any

    @classmethod
    def create(cls, region: str) -> Clients:
        session = boto3.Session(region_name=region)
        return cls(session.client("s3"), session.client("sagemaker"), session.client("sagemaker-runtime"))


def ecr_client(region: str) -> Any:
    return boto3.Session(region_name=region).client("ecr")


class Call(NamedTuple):
    """One AWS request of a plan: what `--dry-run` prints."""

    service: str
    operation: str
    params: dict[str, Any]
    when: str = ""

    def __str__(self) -> str:
        comment = f"  # {self.when}" if self.when else ""
        return f"{self.service}.{self.operation}{comment}\n{json.dumps(self.params, indent=2)}"


def artifact_location(bucket: str, prefix: str, model_version: str, runtime: str = ONNX_INT8) -> tuple[str, str]:
    """One tarball per version and runtime: a Model of another image never finds its artifact replaced."""
    key = f"{prefix.strip('/')}/{model_version}/model-{runtime}.tar.gz"
    return key, f"s3://{bucket}/{key}"


def baseline_key(artifact_key: str) -> str:
    """The drift baseline's key: beside the version's model.tar.gz, where the drift job looks for it."""
    return f"{artifact_key.rsplit('/', 1)[0]}/{DRIFT_BASELINE_FILE}"


def upload_artifact(s3: Any, model_dir: Path, image: ServingImage, bucket: str, key: str) -> None:
    """Pack the model folder for the image into model.tar.gz and upload it, with a progress bar; then its drift
    baseline."""
    with tempfile.TemporaryDirectory(prefix="news-classifier-artifact-") as tmp:
        archive = pack(model_dir, Path(tmp) / "model.tar.gz", image.runtime, image.code_in_artifact)
        with tqdm(total=archive.stat().st_size, unit="B", unit_scale=True, desc=f"s3://{bucket}/{key}") as bar:
            s3.upload_file(str(archive), bucket, key, Callback=bar.update)
    s3.upload_file(str(Path(model_dir) / DRIFT_BASELINE_FILE), bucket, baseline_key(key))


def _missing(error: ClientError) -> bool:
    """SageMaker answers a Describe* of an absent resource with ValidationException 'Could not find ...'."""
    details = error.response.get("Error", {})
    return details.get("Code") == "ValidationException" and "Could not find" in details.get("Message", "")


def describe(call: Any, **params: str) -> dict[str, Any] | None:
    try:
        return call(**params)
    except ClientError as exc:
        if _missing(exc):
            return None
        raise


def ensure_model_and_config(sm: Any, release: Release) -> None:
    """Create the Model and EndpointConfig unless a previous run already did (same name, same settings)."""
    if describe(sm.describe_model, ModelName=release.name) is None:
        sm.create_model(**release.model_request())
    if describe(sm.describe_endpoint_config, EndpointConfigName=release.name) is None:
        sm.create_endpoint_config(**release.endpoint_config_request())


def wait_for_endpoint(sm: Any, endpoint: str, poll_seconds: float, timeout_seconds: float) -> dict[str, Any]:
    """Poll until the endpoint leaves Creating/Updating, showing its status and the time spent."""
    deadline = time.monotonic() + timeout_seconds
    with tqdm(desc=endpoint, bar_format="{desc} [{elapsed}]") as progress:
        while True:
            described = sm.describe_endpoint(EndpointName=endpoint)
            progress.set_description_str(f"{endpoint}: {described['EndpointStatus']}")
            if described["EndpointStatus"] not in IN_PROGRESS:
                return described
            if time.monotonic() > deadline:
                raise DeployError(f"{endpoint}: still {described['EndpointStatus']} after {timeout_seconds:.0f} s")
            time.sleep(poll_seconds)


def smoke_test(runtime: Any, endpoint: str, model_version: str, labels: Sequence[str]) -> None:
    """One real request: the endpoint must answer with the deployed version and one of the model's labels."""
    try:
        response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType=JSON, Accept=JSON,
                                           Body=json.dumps({"inputs": [SMOKE_HEADLINE]}))
        body = json.loads(response["Body"].read())
        label, served = body["predictions"][0]["label"], body["model_version"]
    except (ClientError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise DeployError(f"{endpoint}: the test request failed: {exc}") from exc
    if served != model_version or label not in labels:
        raise DeployError(f"{endpoint}: answered model {served!r} with label {label!r}; expected model "
                          f"{model_version!r} and one of {list(labels)}")


def _healthy(described: dict[str, Any], config: str) -> str | None:
    """None when the endpoint is InService on `config`, else what is wrong."""
    if described["EndpointStatus"] != "InService":
        return f"status {described['EndpointStatus']}: {described.get('FailureReason', 'no reason given')}"
    if described["EndpointConfigName"] != config:
        return f"SageMaker kept {described['EndpointConfigName']}: {described.get('FailureReason', 'no reason')}"
    return None


def create_endpoint(clients: Clients, release: Release, labels: Sequence[str], poll_seconds: float,
                    timeout_seconds: float) -> None:
    clients.sagemaker.create_endpoint(**release.endpoint_request())
    problem = _healthy(wait_for_endpoint(clients.sagemaker, release.endpoint, poll_seconds, timeout_seconds),
                       release.name)
    if problem:
        raise DeployError(f"{release.endpoint}: creation failed ({problem}); delete it before trying again")
    smoke_test(clients.runtime, release.endpoint, release.model_version, labels)


def update_endpoint(clients: Clients, release: Release, previous: str, labels: Sequence[str], poll_seconds: float,
                    timeout_seconds: float) -> None:
    """Switch to the new config; on a failed update or a failed test request, return to `previous`."""
    sm = clients.sagemaker
    sm.update_endpoint(EndpointName=release.endpoint, EndpointConfigName=release.name)
    try:
        problem = _healthy(wait_for_endpoint(sm, release.endpoint, poll_seconds, timeout_seconds), release.name)
        if problem:
            raise DeployError(f"{release.endpoint}: update to {release.name} failed ({problem})")
        smoke_test(clients.runtime, release.endpoint, release.model_version, labels)
    except DeployError as exc:
        roll_back(sm, release.endpoint, previous, poll_seconds, timeout_seconds)
        raise DeployError(f"{exc}; the endpoint serves {previous} again") from exc


def roll_back(sm: Any, endpoint: str, previous: str, poll_seconds: float, timeout_seconds: float) -> None:
    if _healthy(sm.describe_endpoint(EndpointName=endpoint), previous) is None:
        return  # SageMaker already reverted a failed update
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=previous)
    problem = _healthy(wait_for_endpoint(sm, endpoint, poll_seconds, timeout_seconds), previous)
    if problem:
        raise DeployError(f"{endpoint}: rollback to {previous} failed too ({problem}); check the console")


def deploy(clients: Clients, release: Release, model_dir: Path, bucket: str, key: str, poll_seconds: float = 15,
           timeout_seconds: float = 1800) -> None:
    """Upload, create Model and EndpointConfig, then create or update the endpoint and test it."""
    labels = LabelMap.load(model_dir).names
    upload_artifact(clients.s3, model_dir, release.image, bucket, key)
    ensure_model_and_config(clients.sagemaker, release)
    if describe(clients.sagemaker.describe_endpoint, EndpointName=release.endpoint) is None:
        create_endpoint(clients, release, labels, poll_seconds, timeout_seconds)
        return
    current = wait_for_endpoint(clients.sagemaker, release.endpoint, poll_seconds, timeout_seconds)
    if current["EndpointStatus"] != "InService":
        raise DeployError(f"{release.endpoint} is {current['EndpointStatus']} ({current.get('FailureReason')}); "
                          f"delete it first: python -m model.tools.deploy delete --endpoint {release.endpoint}")
    if current["EndpointConfigName"] == release.name:
        log.info("%s already serves %s", release.endpoint, release.name)
        smoke_test(clients.runtime, release.endpoint, release.model_version, labels)
    else:
        update_endpoint(clients, release, current["EndpointConfigName"], labels, poll_seconds, timeout_seconds)


def deploy_plan(release: Release, model_dir: Path, bucket: str, key: str) -> list[Call]:
    """The calls `deploy` makes, in order, with the exact parameters of the requests it builds."""
    describe_endpoint = {"EndpointName": release.endpoint}
    return [
        Call("s3", "upload_file", {"Filename": f"model.tar.gz packed from {model_dir}", "Bucket": bucket, "Key": key},
             f"{release.image.runtime} files only, {'with' if release.image.code_in_artifact else 'without'} code/"),
        Call("s3", "upload_file", {"Filename": str(Path(model_dir) / DRIFT_BASELINE_FILE), "Bucket": bucket,
                                   "Key": baseline_key(key)}, "for the API stack's drift job"),
        Call("sagemaker", "create_model", release.model_request(), "unless it exists"),
        Call("sagemaker", "create_endpoint_config", release.endpoint_config_request(), "unless it exists"),
        Call("sagemaker", "describe_endpoint", describe_endpoint),
        Call("sagemaker", "create_endpoint", release.endpoint_request(), "if the endpoint does not exist"),
        Call("sagemaker", "update_endpoint", {"EndpointName": release.endpoint, "EndpointConfigName": release.name},
             "if it exists; on failure, update_endpoint back to its current config"),
        Call("sagemaker", "describe_endpoint", describe_endpoint, "until it leaves Creating/Updating"),
        Call("sagemaker-runtime", "invoke_endpoint",
             {"EndpointName": release.endpoint, "ContentType": JSON, "Accept": JSON,
              "Body": json.dumps({"inputs": [SMOKE_HEADLINE]})}, f"expects model_version {release.model_version}"),
    ]


def tagged_with(sm: Any, endpoint: str, kind: str) -> list[str]:
    """Names of the endpoint configs or models (`kind`) this tool created for `endpoint`: by their Endpoint tag."""
    key = {"endpoint_configs": "EndpointConfig", "models": "Model"}[kind]
    tag = {"Key": "Endpoint", "Value": endpoint}
    return [item[f"{key}Name"]
            for page in sm.get_paginator(f"list_{kind}").paginate(NameContains=endpoint)
            for item in page[f"{key}s"]
            if tag in sm.list_tags(ResourceArn=item[f"{key}Arn"])["Tags"]]


def delete(sm: Any, endpoint: str, poll_seconds: float = 15) -> list[str]:
    """Delete the endpoint, wait until it is gone, then its configs and models; return what was deleted."""
    deleted = []
    if describe(sm.describe_endpoint, EndpointName=endpoint) is not None:
        sm.delete_endpoint(EndpointName=endpoint)
        sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint,
                                               WaiterConfig={"Delay": poll_seconds, "MaxAttempts": 120})
        deleted.append(f"endpoint {endpoint}")
    for name in tagged_with(sm, endpoint, "endpoint_configs"):
        sm.delete_endpoint_config(EndpointConfigName=name)
        deleted.append(f"endpoint config {name}")
    for name in tagged_with(sm, endpoint, "models"):
        sm.delete_model(ModelName=name)
        deleted.append(f"model {name}")
    return deleted


def delete_plan(endpoint: str) -> list[Call]:
    each = f"<each one tagged Endpoint={endpoint}>"
    return [Call("sagemaker", "delete_endpoint", {"EndpointName": endpoint}, "if it exists; wait until it is gone"),
            Call("sagemaker", "list_endpoint_configs", {"NameContains": endpoint}, "then list_tags of each"),
            Call("sagemaker", "delete_endpoint_config", {"EndpointConfigName": each}),
            Call("sagemaker", "list_models", {"NameContains": endpoint}, "then list_tags of each"),
            Call("sagemaker", "delete_model", {"ModelName": each})]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    aws = argparse.ArgumentParser(add_help=False)
    aws.add_argument("--region", default=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    aws.add_argument("--dry-run", action="store_true", help="print every AWS call instead of making it")
    repository = argparse.ArgumentParser(add_help=False)
    repository.add_argument("--ecr-repository", default=env.get("ECR_REPOSITORY"),
                            help="ECR repository (name or URI; default: $ECR_REPOSITORY) to build and push the slim "
                                 "ONNX image to; without it, or without docker, the Hugging Face PyTorch image serves")
    common = argparse.ArgumentParser(add_help=False, parents=[aws])
    common.add_argument("--endpoint", required=True, help="SageMaker endpoint name, e.g. news-classifier-dev")
    common.add_argument("--poll-seconds", type=float, default=15)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("image", parents=[aws, repository],
                        help="only choose the serving image (build and push the slim one when docker can); "
                             "print it as JSON: kind, uri, runtime")
    up = commands.add_parser("deploy", parents=[common, repository],
                             help="create the endpoint or update it to MODEL_DIR")
    up.add_argument("--model-dir", type=Path, required=True, help="a model folder made by training_jobs.train")
    up.add_argument("--bucket", default=env.get("SAGEMAKER_BUCKET"), help="default: $SAGEMAKER_BUCKET")
    up.add_argument("--prefix", default="news-classifier/models", help="S3 key prefix of the versioned artifacts")
    up.add_argument("--role", default=env.get("SAGEMAKER_ROLE_ARN"),
                    help="IAM role the endpoint runs as (default: $SAGEMAKER_ROLE_ARN)")
    up.add_argument("--image-uri", help="serve with this image, not --ecr-repository's: a slim ONNX image pushed "
                                        "before (`image` prints it) or the region's Hugging Face image")
    up.add_argument("--memory", type=int, default=Serverless.memory_mb, help="MB: 1024, 2048, ... 6144")
    up.add_argument("--max-concurrency", type=int, default=Serverless.max_concurrency)
    up.add_argument("--provisioned-concurrency", type=int, help="warm instances (billed while idle)")
    up.add_argument("--timeout-seconds", type=float, default=1800, help="give up waiting for InService after this")
    commands.add_parser("delete", parents=[common], help="delete the endpoint, its configs and its models")
    return parser.parse_args(argv)


def planned_digest(tag: str) -> str:
    """What a dry run writes for the digest ECR would answer."""
    return f"<digest of {tag}>"


def image_plan(region: str, repository: str) -> tuple[str, list[Call]]:
    """The slim image (by the digest ECR would answer) and the calls that build and push it, without AWS (the
    account may be unknown)."""
    name = repository_name(repository)
    uri = repository if "/" in repository else f"<account>.dkr.ecr.{region}.amazonaws.com/{name}"
    tag = content_tag()
    image = f"{uri}:{tag}"
    describe_images = {"repositoryName": name, "imageIds": [{"imageTag": tag}]}
    return by_digest(uri, planned_digest(tag)), [
        Call("ecr", "describe_repositories", {"repositoryNames": [name]}),
        Call("ecr", "describe_images", describe_images,
             "the build and push below only if this tag is not there yet; else its imageDigest is the image"),
        Call("docker", "build", {"command": build_command(image)}),
        Call("ecr", "get_authorization_token", {}),
        Call("docker", "login", {"command": login_command("<proxyEndpoint>", "AWS")}, "password on stdin"),
        Call("docker", "push", {"command": push_command(image)}),
        Call("ecr", "describe_images", describe_images, "after the push: its imageDigest is the image the Model "
                                                        "names (the repository's tags are immutable)")]


def pin_plan(image_uri: str) -> tuple[str, list[Call]]:
    """An --image-uri by tag, as a dry run names it (by the digest ECR would answer), and the call that resolves it."""
    found = ecr_image(image_uri)
    if found["digest"]:
        return image_uri, []
    params = {"registryId": found["account"], "repositoryName": found["name"], "imageIds": [{"imageTag": found["tag"]}]}
    return (by_digest(found["repository"], planned_digest(found["tag"])),
            [Call("ecr", "describe_images", params, "the Model names the image by this imageDigest")])


def serving_image(args: argparse.Namespace) -> tuple[ServingImage, list[Call]]:
    """The image to deploy (built and pushed when it is the slim one), and in a dry run the calls instead."""
    image_uri = getattr(args, "image_uri", None)
    if not args.dry_run:
        return choose(args.region, lambda: ecr_client(args.region), image_uri, args.ecr_repository), []
    plan: list[Call] = []

    def planned(_ecr: Any, repository: str) -> str:
        image, calls = image_plan(args.region, repository)
        plan.extend(calls)
        return image

    def planned_pin(_ecr: Any, uri: str) -> str:
        image, calls = pin_plan(uri)
        plan.extend(calls)
        return image

    return choose(args.region, lambda: None, image_uri, args.ecr_repository, build=planned, pin=planned_pin), plan


def check_release_inputs(args: argparse.Namespace) -> str:
    """Refuse what would fail later, before any image is built; return the model version."""
    for flag, value in (("--bucket (or SAGEMAKER_BUCKET)", args.bucket), ("--role (or SAGEMAKER_ROLE_ARN)", args.role)):
        if not value:
            raise DeployError(f"pass {flag}")
    model_version = read_metadata(args.model_dir)["model_version"]
    if not (args.model_dir / DRIFT_BASELINE_FILE).is_file():
        raise DeployError(f"{args.model_dir} has no {DRIFT_BASELINE_FILE} (training writes it); add it with "
                          f"`python -m training_jobs.drift_baseline --model-dir {args.model_dir}`")
    return model_version


def check_runtime(model_dir: Path, image: ServingImage) -> None:
    """The model folder must hold the model files the image serves."""
    if image.runtime not in read_metadata(model_dir).get("runtimes", {}):
        raise DeployError(f"{model_dir} has no {image.runtime} model for the {image.kind} image; run "
                          f"`make export-onnx MODEL_DIR={model_dir}`")


def release_from_args(args: argparse.Namespace) -> tuple[Release, str, list[Call]]:
    """The release described by the command line, the artifact's S3 key, and in a dry run the image's calls."""
    model_version = check_release_inputs(args)
    serverless = Serverless(args.memory, args.max_concurrency, args.provisioned_concurrency)
    image, image_calls = serving_image(args)
    check_runtime(args.model_dir, image)
    key, uri = artifact_location(args.bucket, args.prefix, model_version, image.runtime)
    return Release(args.endpoint, model_version, uri, image, args.role, serverless), key, image_calls


def run(args: argparse.Namespace) -> None:
    if not args.region:
        raise DeployError("pass --region or set AWS_REGION")
    if args.command == "delete":
        if args.dry_run:
            print(*delete_plan(args.endpoint), sep="\n")
            return
        print(*delete(Clients.create(args.region).sagemaker, args.endpoint, args.poll_seconds), sep="\n")
        return
    if args.command == "image":
        image, image_calls = serving_image(args)
        print(*image_calls, json.dumps({"kind": image.kind, "uri": image.uri, "runtime": image.runtime}), sep="\n")
        return
    release, key, image_calls = release_from_args(args)
    if args.dry_run:
        print(*image_calls, *deploy_plan(release, args.model_dir, args.bucket, key), sep="\n")
        return
    deploy(Clients.create(args.region), release, args.model_dir, args.bucket, key, args.poll_seconds,
           args.timeout_seconds)
    print(f"{release.endpoint} serves {release.model_version} from {release.artifact_uri} (config {release.name}) "
          f"with the {release.image.kind} image {release.image.uri} ({release.image.runtime})")


def run_command_line(run: Callable[[argparse.Namespace], None], args: argparse.Namespace,
                     refusals: tuple[type[Exception], ...] = ()) -> int:
    """Run a deployment tool: 2 for what it refuses (the message says what to change), 1 when AWS refuses."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        run(args)
    except (DeployError, ImageError, FileNotFoundError, *refusals) as exc:
        log.error("%s", exc)
        return 2
    except (ClientError, BotoCoreError) as exc:
        log.error("AWS refused: %s", exc)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command_line(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
