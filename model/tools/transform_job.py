"""A SageMaker Batch Transform job on the endpoint's artifact and image, as a plan: `model.tools.batch_transform` runs
it or prints it (`--dry-run`), so both show the same calls.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from tqdm.auto import tqdm

from devkit.plan import Call, Step, execute
from model.serving.inference import JSON_LINES
from model.tools.endpoint import SageMakerClients, model_step, upload_artifact, upload_calls
from model.tools.release import Release
from model.tools.transform_contract import (
    INVOCATION_TIMEOUT_S,
    OUTPUT_SUFFIX,
    Counts,
    Settings,
    TransformError,
    count_answers,
)

# Model and job names start with this; `python -m model.tools.deploy_endpoint delete --endpoint news-classifier-batch`
# removes the Models it tags.
BATCH_NAME = "news-classifier-batch"
IN_PROGRESS = {"InProgress", "Stopping"}
LOG_GROUP = "/aws/sagemaker/TransformJobs"


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise TransformError(f"{uri!r} is not an s3://bucket/prefix location")
    return bucket, key


@dataclass(frozen=True)
class TransformJob:
    """One Transform job of one model version: the Model (as `make deploy-endpoint` builds it) and the job request."""

    release: Release
    job_name: str
    input_uri: str
    output_uri: str
    instance_type: str
    instance_count: int
    settings: Settings
    gzipped: bool = False

    def request(self) -> dict[str, Any]:
        compression = "Gzip" if self.gzipped or self.input_uri.endswith(".gz") else "None"
        return {
            "TransformJobName": self.job_name,
            "ModelName": self.release.name,
            "MaxConcurrentTransforms": self.settings.max_concurrent,
            "MaxPayloadInMB": self.settings.max_payload_mb,
            "BatchStrategy": "MultiRecord",
            "ModelClientConfig": {"InvocationsTimeoutInSeconds": INVOCATION_TIMEOUT_S, "InvocationsMaxRetries": 1},
            "Environment": {"SAGEMAKER_MODEL_SERVER_TIMEOUT": str(INVOCATION_TIMEOUT_S)},
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": self.input_uri}},
                               "ContentType": JSON_LINES, "SplitType": "Line", "CompressionType": compression},
            "TransformOutput": {"S3OutputPath": self.output_uri, "Accept": JSON_LINES, "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": self.instance_type, "InstanceCount": self.instance_count},
            "Tags": self.release.tags(),
        }


def job_name(model_version: str, now: float | None = None) -> str:
    """Unique per start, at most 63 characters, readable: the version and the start time."""
    return f"{BATCH_NAME}-{model_version}"[:52].rstrip("-") + time.strftime("-%m%d%H%M%S", time.gmtime(now))


def artifact_uploaded(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise
    return True


class LogTail:
    """The job's CloudWatch log events not printed yet (the log group appears only once the instances start)."""

    def __init__(self, logs: Any, job: str) -> None:
        self.logs, self.job, self.since, self.seen = logs, job, 0, set()

    def new_lines(self) -> Iterator[str]:
        try:
            pages = self.logs.get_paginator("filter_log_events").paginate(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self.job}/", startTime=self.since)
            for page in pages:
                for event in page.get("events", []):
                    if event["eventId"] not in self.seen:
                        self.seen.add(event["eventId"])
                        self.since = max(self.since, event["timestamp"])
                        yield f"[{event['logStreamName'].split('/')[-1]}] {event['message'].rstrip()}"
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise


def wait_for_job(sm: Any, logs: Any, job: str, poll_seconds: float) -> None:
    """Poll until the job leaves InProgress, showing its status and time, and printing its log lines as they come;
    a job that did not complete is an error with SageMaker's reason."""
    tail = LogTail(logs, job)
    with tqdm(desc=job, bar_format="{desc} [{elapsed}]") as progress:
        while True:
            described = sm.describe_transform_job(TransformJobName=job)
            progress.set_description_str(f"{job}: {described['TransformJobStatus']}")
            for line in tail.new_lines():
                progress.write(line)
            if described["TransformJobStatus"] not in IN_PROGRESS:
                break
            time.sleep(poll_seconds)
    if described["TransformJobStatus"] != "Completed":
        raise TransformError(f"{job}: {described['TransformJobStatus']}: "
                             f"{described.get('FailureReason', 'no reason given')}")


def count_s3_answers(s3: Any, output_uri: str) -> Counts:
    """Stream every `.out` object under the output prefix and count its answers (flat memory for any size)."""
    bucket, prefix = split_s3(output_uri)
    total = Counts()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(OUTPUT_SUFFIX):
                total += count_answers(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].iter_lines())
    return total


def transform_plan(job: TransformJob, model_dir: Path, bucket: str, key: str,
                   poll_seconds: float) -> list[Step[SageMakerClients]]:
    """Upload the artifact unless it is there, create the Model unless it exists, run the job, count its answers."""
    image, create = job.release.image, Call("sagemaker", "create_transform_job", job.request())
    output_bucket, output_prefix = split_s3(job.output_uri)

    def upload(clients: SageMakerClients, _: object) -> None:
        if not artifact_uploaded(clients.s3, bucket, key):
            upload_artifact(clients.s3, model_dir, image, bucket, key)

    return [
        Step("artifact", [Call("s3", "head_object", {"Bucket": bucket, "Key": key}, "is this model version uploaded?"),
                          *upload_calls(model_dir, image, bucket, key, "unless it is: ")], upload),
        model_step(job.release),
        Step("job", [create], lambda clients, _: clients.sagemaker.create_transform_job(**create.params)),
        Step("wait", [Call("sagemaker", "describe_transform_job", {"TransformJobName": job.job_name},
                           "until it leaves InProgress"),
                      Call("logs", "filter_log_events", {"logGroupName": LOG_GROUP,
                                                         "logStreamNamePrefix": f"{job.job_name}/"},
                           "while waiting: the job's log lines")],
             lambda clients, _: wait_for_job(clients.sagemaker, clients.logs, job.job_name, poll_seconds)),
        Step("answers", [Call("s3", "list_objects_v2", {"Bucket": output_bucket, "Prefix": output_prefix}),
                         Call("s3", "get_object", {"Bucket": output_bucket, "Key": f"<each *{OUTPUT_SUFFIX} object>"},
                              "to count its answers")],
             lambda clients, _: count_s3_answers(clients.s3, job.output_uri)),
    ]


def run_transform(clients: SageMakerClients, job: TransformJob, model_dir: Path, bucket: str, key: str,
                  poll_seconds: float) -> Counts:
    return execute(transform_plan(job, model_dir, bucket, key, poll_seconds), clients)["answers"]
