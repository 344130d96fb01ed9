"""A SageMaker Serverless endpoint's lifecycle, as plans: upload, create or update without downtime, test, roll back;
delete. `model.tools.deploy_endpoint` runs a plan or prints it (`--dry-run`), so both show the same calls.

A failed update goes back to the previous config (docs/aws-deployment.md).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import boto3
from botocore.exceptions import ClientError
from tqdm.auto import tqdm

from devkit.plan import Call, Step, execute
from model.artifact import DRIFT_BASELINE_FILE, pack
from model.labels import LabelMap
from model.serving.inference import JSON
from model.tools.image import ServingImage
from model.tools.release import Release, ReleaseError, baseline_key

log = logging.getLogger("model.tools.endpoint")

IN_PROGRESS = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
SMOKE_HEADLINE = "Stocks rally as the central bank holds interest rates"


class SageMakerClients(NamedTuple):
    """The AWS clients of the SageMaker tools' plans: the endpoint's and a Transform job's (a test may leave out the
    one its plan does not use)."""

    s3: Any
    sagemaker: Any
    runtime: Any = None
    logs: Any = None

    @classmethod
    def create(cls, region: str) -> SageMakerClients:
        session = boto3.Session(region_name=region)
        return cls(*(session.client(name) for name in ("s3", "sagemaker", "sagemaker-runtime", "logs")))


# --- the artifact and the Model -------------------------------------------------------------------------------------

def upload_artifact(s3: Any, model_dir: Path, image: ServingImage, bucket: str, key: str) -> None:
    """Pack the model folder for the image into model.tar.gz and upload it, with a progress bar; then its drift
    baseline."""
    with tempfile.TemporaryDirectory(prefix="news-classifier-artifact-") as tmp:
        archive = pack(model_dir, Path(tmp) / "model.tar.gz", image.runtime, image.code_in_artifact)
        with tqdm(total=archive.stat().st_size, unit="B", unit_scale=True, desc=f"s3://{bucket}/{key}") as bar:
            s3.upload_file(str(archive), bucket, key, Callback=bar.update)
    s3.upload_file(str(Path(model_dir) / DRIFT_BASELINE_FILE), bucket, baseline_key(key))


def upload_calls(model_dir: Path, image: ServingImage, bucket: str, key: str, unless: str = "") -> list[Call]:
    """The uploads of `upload_artifact`; `unless` says when they are skipped."""
    code = "with" if image.code_in_artifact else "without"
    return [Call("s3", "upload_file", {"Filename": f"model.tar.gz packed from {model_dir}", "Bucket": bucket,
                                       "Key": key}, f"{unless}{image.runtime} files only, {code} code/"),
            Call("s3", "upload_file", {"Filename": str(Path(model_dir) / DRIFT_BASELINE_FILE), "Bucket": bucket,
                                       "Key": baseline_key(key)}, f"{unless}for the API stack's drift job")]


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


def created_unless_found(name: str, find: Call, create: Call) -> Step[SageMakerClients]:
    """Send `create` unless `find` (a SageMaker Describe*) finds the resource: a re-run creates nothing twice. Both
    are sent as shown."""

    def run(clients: SageMakerClients, _: object) -> None:
        sagemaker = clients.sagemaker
        if describe(getattr(sagemaker, find.operation), **find.params) is None:
            getattr(sagemaker, create.operation)(**create.params)

    return Step(name, [find, create], run)


def model_step(release: Release) -> Step[SageMakerClients]:
    return created_unless_found("model", Call("sagemaker", "describe_model", {"ModelName": release.name}),
                                Call("sagemaker", "create_model", release.model_request(), "unless it exists"))


# --- the endpoint ---------------------------------------------------------------------------------------------------

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
                raise ReleaseError(f"{endpoint}: still {described['EndpointStatus']} after {timeout_seconds:.0f} s")
            time.sleep(poll_seconds)


def smoke_request(endpoint: str) -> dict[str, str]:
    return {"EndpointName": endpoint, "ContentType": JSON, "Accept": JSON,
            "Body": json.dumps({"inputs": [SMOKE_HEADLINE]})}


def smoke_test(runtime: Any, endpoint: str, model_version: str, labels: Sequence[str]) -> None:
    """One real request: the endpoint must answer with the deployed version and one of the model's labels."""
    try:
        body = json.loads(runtime.invoke_endpoint(**smoke_request(endpoint))["Body"].read())
        label, served = body["predictions"][0]["label"], body["model_version"]
    except (ClientError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ReleaseError(f"{endpoint}: the test request failed: {exc}") from exc
    if served != model_version or label not in labels:
        raise ReleaseError(f"{endpoint}: answered model {served!r} with label {label!r}; expected model "
                           f"{model_version!r} and one of {list(labels)}")


def _healthy(described: dict[str, Any], config: str) -> str | None:
    """None when the endpoint is InService on `config`, else what is wrong."""
    if described["EndpointStatus"] != "InService":
        return f"status {described['EndpointStatus']}: {described.get('FailureReason', 'no reason given')}"
    if described["EndpointConfigName"] != config:
        return f"SageMaker kept {described['EndpointConfigName']}: {described.get('FailureReason', 'no reason')}"
    return None


def create_endpoint(clients: SageMakerClients, release: Release, labels: Sequence[str], poll_seconds: float,
                    timeout_seconds: float) -> None:
    clients.sagemaker.create_endpoint(**release.endpoint_request())
    problem = _healthy(wait_for_endpoint(clients.sagemaker, release.endpoint, poll_seconds, timeout_seconds),
                       release.name)
    if problem:
        raise ReleaseError(f"{release.endpoint}: creation failed ({problem}); delete it before trying again")
    smoke_test(clients.runtime, release.endpoint, release.model_version, labels)


def update_endpoint(clients: SageMakerClients, release: Release, previous: str, labels: Sequence[str],
                    poll_seconds: float, timeout_seconds: float) -> None:
    """Switch to the new config; on a failed update or a failed test request, return to `previous`."""
    sm = clients.sagemaker
    sm.update_endpoint(EndpointName=release.endpoint, EndpointConfigName=release.name)
    try:
        problem = _healthy(wait_for_endpoint(sm, release.endpoint, poll_seconds, timeout_seconds), release.name)
        if problem:
            raise ReleaseError(f"{release.endpoint}: update to {release.name} failed ({problem})")
        smoke_test(clients.runtime, release.endpoint, release.model_version, labels)
    except ReleaseError as exc:
        roll_back(sm, release.endpoint, previous, poll_seconds, timeout_seconds)
        raise ReleaseError(f"{exc}; the endpoint serves {previous} again") from exc


def roll_back(sm: Any, endpoint: str, previous: str, poll_seconds: float, timeout_seconds: float) -> None:
    if _healthy(sm.describe_endpoint(EndpointName=endpoint), previous) is None:
        return  # SageMaker already reverted a failed update
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=previous)
    problem = _healthy(wait_for_endpoint(sm, endpoint, poll_seconds, timeout_seconds), previous)
    if problem:
        raise ReleaseError(f"{endpoint}: rollback to {previous} failed too ({problem}); check the console")


def put_endpoint(clients: SageMakerClients, release: Release, labels: Sequence[str], poll_seconds: float,
                 timeout_seconds: float) -> None:
    """Create the endpoint, or update it to the release's config, and test it."""
    if describe(clients.sagemaker.describe_endpoint, EndpointName=release.endpoint) is None:
        create_endpoint(clients, release, labels, poll_seconds, timeout_seconds)
        return
    current = wait_for_endpoint(clients.sagemaker, release.endpoint, poll_seconds, timeout_seconds)
    if current["EndpointStatus"] != "InService":
        raise ReleaseError(f"{release.endpoint} is {current['EndpointStatus']} ({current.get('FailureReason')}); "
                           "delete it first: python -m model.tools.deploy_endpoint delete --endpoint "
                           f"{release.endpoint}")
    if current["EndpointConfigName"] == release.name:
        log.info("%s already serves %s", release.endpoint, release.name)
        smoke_test(clients.runtime, release.endpoint, release.model_version, labels)
    else:
        update_endpoint(clients, release, current["EndpointConfigName"], labels, poll_seconds, timeout_seconds)


def endpoint_calls(release: Release) -> list[Call]:
    """The calls of `put_endpoint`, with the exact requests it builds."""
    describe_endpoint = {"EndpointName": release.endpoint}
    return [
        Call("sagemaker", "describe_endpoint", describe_endpoint),
        Call("sagemaker", "create_endpoint", release.endpoint_request(), "if the endpoint does not exist"),
        Call("sagemaker", "update_endpoint", {"EndpointName": release.endpoint, "EndpointConfigName": release.name},
             "if it exists; on failure, update_endpoint back to its current config"),
        Call("sagemaker", "describe_endpoint", describe_endpoint, "until it leaves Creating/Updating"),
        Call("sagemaker-runtime", "invoke_endpoint", smoke_request(release.endpoint),
             f"expects model_version {release.model_version}"),
    ]


def deploy_plan(release: Release, model_dir: Path, bucket: str, key: str, poll_seconds: float = 15,
                timeout_seconds: float = 1800) -> list[Step[SageMakerClients]]:
    """Upload, create Model and EndpointConfig, then create or update the endpoint and test it."""
    labels = LabelMap.load(model_dir).names
    return [
        Step("artifact", upload_calls(model_dir, release.image, bucket, key),
             lambda clients, _: upload_artifact(clients.s3, model_dir, release.image, bucket, key)),
        model_step(release),
        created_unless_found("endpoint config",
                             Call("sagemaker", "describe_endpoint_config", {"EndpointConfigName": release.name}),
                             Call("sagemaker", "create_endpoint_config", release.endpoint_config_request(),
                                  "unless it exists")),
        Step("endpoint", endpoint_calls(release),
             lambda clients, _: put_endpoint(clients, release, labels, poll_seconds, timeout_seconds)),
    ]


def deploy(clients: SageMakerClients, release: Release, model_dir: Path, bucket: str, key: str,
           poll_seconds: float = 15, timeout_seconds: float = 1800) -> None:
    execute(deploy_plan(release, model_dir, bucket, key, poll_seconds, timeout_seconds), clients)


# --- deletion -------------------------------------------------------------------------------------------------------

def tagged_with(sm: Any, endpoint: str, kind: str) -> list[str]:
    """Names of the endpoint configs or models (`kind`) this tool created for `endpoint`: by their Endpoint tag."""
    key = {"endpoint_configs": "EndpointConfig", "models": "Model"}[kind]
    tag = {"Key": "Endpoint", "Value": endpoint}
    return [item[f"{key}Name"]
            for page in sm.get_paginator(f"list_{kind}").paginate(NameContains=endpoint)
            for item in page[f"{key}s"]
            if tag in sm.list_tags(ResourceArn=item[f"{key}Arn"])["Tags"]]


def delete_endpoint(sm: Any, endpoint: str, poll_seconds: float) -> list[str]:
    """Delete the endpoint and wait until it is gone; what was deleted."""
    if describe(sm.describe_endpoint, EndpointName=endpoint) is None:
        return []
    sm.delete_endpoint(EndpointName=endpoint)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint, WaiterConfig={"Delay": poll_seconds,
                                                                                "MaxAttempts": 120})
    return [f"endpoint {endpoint}"]


def delete_configs(sm: Any, endpoint: str) -> list[str]:
    names = tagged_with(sm, endpoint, "endpoint_configs")
    for name in names:
        sm.delete_endpoint_config(EndpointConfigName=name)
    return [f"endpoint config {name}" for name in names]


def delete_models(sm: Any, endpoint: str) -> list[str]:
    names = tagged_with(sm, endpoint, "models")
    for name in names:
        sm.delete_model(ModelName=name)
    return [f"model {name}" for name in names]


def delete_plan(endpoint: str, poll_seconds: float = 15) -> list[Step[SageMakerClients]]:
    """The endpoint, once it is gone its configs, then its models: each config names a model."""
    each = f"<each one tagged Endpoint={endpoint}>"
    listed = "then list_tags of each"
    return [
        Step("endpoint", [Call("sagemaker", "describe_endpoint", {"EndpointName": endpoint}, "does it exist?"),
                          Call("sagemaker", "delete_endpoint", {"EndpointName": endpoint}, "if it does"),
                          Call("sagemaker", "describe_endpoint", {"EndpointName": endpoint}, "until it is gone")],
             lambda clients, _: delete_endpoint(clients.sagemaker, endpoint, poll_seconds)),
        Step("endpoint configs", [Call("sagemaker", "list_endpoint_configs", {"NameContains": endpoint}, listed),
                                  Call("sagemaker", "list_tags", {"ResourceArn": "<each one's ARN>"}),
                                  Call("sagemaker", "delete_endpoint_config", {"EndpointConfigName": each})],
             lambda clients, _: delete_configs(clients.sagemaker, endpoint)),
        Step("models", [Call("sagemaker", "list_models", {"NameContains": endpoint}, listed),
                        Call("sagemaker", "list_tags", {"ResourceArn": "<each one's ARN>"}),
                        Call("sagemaker", "delete_model", {"ModelName": each})],
             lambda clients, _: delete_models(clients.sagemaker, endpoint)),
    ]


def delete(clients: SageMakerClients, endpoint: str, poll_seconds: float = 15) -> list[str]:
    """Delete the endpoint, its configs and its models; what was deleted."""
    return [deleted for names in execute(delete_plan(endpoint, poll_seconds), clients).values() for deleted in names]
