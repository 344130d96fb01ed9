"""Classify files of headlines with SageMaker Batch Transform, on the endpoint's artifact and image.

    python -m model.tools.batch_transform --model-dir artifacts/model --input s3://B/in/ --output s3://B/out/

JSON Lines in, one answer per line out, in order; with local paths the same contract runs on a local endpoint, so
it can be tried without AWS (docs/serving.md).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import ClientError
from tqdm.auto import tqdm

from model.artifact import read_metadata
from model.serving.inference import JSON_LINES
from model.tools.deploy import (
    Call,
    Clients,
    Release,
    Serverless,
    artifact_location,
    check_runtime,
    describe,
    run_command_line,
    serving_image,
    upload_artifact,
)

log = logging.getLogger("model.tools.batch_transform")

# Model and job names start with this; `python -m model.tools.deploy delete --endpoint news-classifier-batch`
# removes the Models it tags.
BATCH_NAME = "news-classifier-batch"
# SageMaker's limits: MaxPayloadInMB <= 100 and MaxPayloadInMB x MaxConcurrentTransforms <= 100. 1 MB is about ten
# thousand headlines: seconds of work per request, well inside the invocation timeout.
MAX_PAYLOAD_MB = 1
MAX_CONCURRENT = 2  # a second request queued while one runs keeps the model busy between mini-batches
INVOCATION_TIMEOUT_S = 600
IN_PROGRESS = {"InProgress", "Stopping"}
LOG_GROUP = "/aws/sagemaker/TransformJobs"
OUTPUT_SUFFIX = ".out"


class TransformError(RuntimeError):
    """The Transform job cannot run or did not complete; the message says why."""


@dataclass(frozen=True)
class Settings:
    """How the input is split and sent: one set of values for the AWS job and its local stand-in."""

    max_payload_mb: int = MAX_PAYLOAD_MB
    max_concurrent: int = MAX_CONCURRENT

    def __post_init__(self) -> None:
        if not 1 <= self.max_payload_mb <= 100 or self.max_payload_mb * self.max_concurrent > 100:
            raise TransformError(f"--max-payload-mb {self.max_payload_mb} x --max-concurrent {self.max_concurrent}: "
                                 "SageMaker takes 1 to 100 MB, and at most 100 MB in flight")
        if self.max_concurrent < 1:
            raise TransformError("--max-concurrent must be >= 1")

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * 1024 * 1024


@dataclass(frozen=True)
class Counts:
    objects: int = 0
    lines: int = 0
    errors: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.objects + other.objects, self.lines + other.lines, self.errors + other.errors)

    def __str__(self) -> str:
        return (f"{self.lines - self.errors:,} headlines labelled, {self.errors:,} lines answered with an error, "
                f"in {self.objects} output file(s)")


def count_answers(lines: Iterable[bytes | str]) -> Counts:
    """Answer lines and the ones that carry an `error` (blank lines of the assembled output are not answers)."""
    answered = errors = 0
    for line in lines:
        if line.strip():
            answered += 1
            errors += is_error(line)
    return Counts(1, answered, errors)


def is_error(line: bytes | str) -> bool:
    """An answer with `error`, or a line that is no JSON object at all (not what the handler writes)."""
    try:
        answer = json.loads(line)
    except ValueError:
        return True
    return not isinstance(answer, dict) or "error" in answer


# --- AWS ------------------------------------------------------------------------------------------------------------

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


def ensure_model(sm: Any, release: Release) -> None:
    if describe(sm.describe_model, ModelName=release.name) is None:
        sm.create_model(**release.model_request())


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


def wait_for_job(sm: Any, logs: Any, job: str, poll_seconds: float) -> dict[str, Any]:
    """Poll until the job leaves InProgress, showing its status and time, and printing its log lines as they come."""
    tail = LogTail(logs, job)
    with tqdm(desc=job, bar_format="{desc} [{elapsed}]") as progress:
        while True:
            described = sm.describe_transform_job(TransformJobName=job)
            progress.set_description_str(f"{job}: {described['TransformJobStatus']}")
            for line in tail.new_lines():
                progress.write(line)
            if described["TransformJobStatus"] not in IN_PROGRESS:
                return described
            time.sleep(poll_seconds)


def count_s3_answers(s3: Any, output_uri: str) -> Counts:
    """Stream every `.out` object under the output prefix and count its answers (flat memory for any size)."""
    bucket, prefix = split_s3(output_uri)
    total = Counts()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(OUTPUT_SUFFIX):
                total += count_answers(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].iter_lines())
    return total


def run_transform(clients: Clients, logs: Any, job: TransformJob, model_dir: Path, bucket: str, key: str,
                  poll_seconds: float) -> Counts:
    """Upload the artifact unless it is there, create the Model unless it exists, run the job, count its answers."""
    if not artifact_uploaded(clients.s3, bucket, key):
        upload_artifact(clients.s3, model_dir, job.release.image, bucket, key)
    ensure_model(clients.sagemaker, job.release)
    clients.sagemaker.create_transform_job(**job.request())
    described = wait_for_job(clients.sagemaker, logs, job.job_name, poll_seconds)
    if described["TransformJobStatus"] != "Completed":
        raise TransformError(f"{job.job_name}: {described['TransformJobStatus']}: "
                             f"{described.get('FailureReason', 'no reason given')}")
    return count_s3_answers(clients.s3, job.output_uri)


def transform_plan(job: TransformJob, model_dir: Path, bucket: str, key: str) -> list[Call]:
    """The calls `run_transform` makes, in order, with the exact requests it builds."""
    return [
        Call("s3", "head_object", {"Bucket": bucket, "Key": key}, "is this model version uploaded?"),
        Call("s3", "upload_file", {"Filename": f"model.tar.gz packed from {model_dir}", "Bucket": bucket, "Key": key},
             "unless it is (and its drift baseline beside it, as make deploy-endpoint does)"),
        Call("sagemaker", "create_model", job.release.model_request(), "unless it exists"),
        Call("sagemaker", "create_transform_job", job.request()),
        Call("sagemaker", "describe_transform_job", {"TransformJobName": job.job_name}, "until it leaves InProgress"),
        Call("logs", "filter_log_events", {"logGroupName": LOG_GROUP, "logStreamNamePrefix": f"{job.job_name}/"},
             "while waiting: the job's log lines"),
        Call("s3", "list_objects_v2", {"Bucket": split_s3(job.output_uri)[0], "Prefix": split_s3(job.output_uri)[1]},
             f"then get_object of each *{OUTPUT_SUFFIX} to count its answers"),
    ]


# --- local: the same contract against a local endpoint -------------------------------------------------------------

def mini_batches(lines: Iterable[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    """Whole lines packed up to `max_bytes` per batch, as MultiRecord does; a line alone above it is an error."""
    batch: list[bytes] = []
    size = 0
    for number, line in enumerate(lines, start=1):
        if len(line) > max_bytes:
            raise TransformError(f"line {number} is {len(line):,} bytes, above the {max_bytes:,}-byte payload limit")
        if batch and size + len(line) > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += len(line)
    if batch:
        yield batch


def invoke(url: str, batch: Sequence[bytes], timeout_s: float = INVOCATION_TIMEOUT_S) -> list[bytes]:
    """POST one mini-batch to the container's /invocations; its answer must hold one line per line sent."""
    request = urllib.request.Request(f"{url}/invocations", data=b"".join(batch), method="POST",
                                     headers={"Content-Type": JSON_LINES, "Accept": JSON_LINES})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = response.read().split(b"\n")
    except urllib.error.HTTPError as exc:
        raise TransformError(f"the container answered {exc.code}: {exc.read()[:500]!r}") from exc
    if len(answer) != len(batch):
        raise TransformError(f"the container answered {len(answer)} line(s) to a mini-batch of {len(batch)}")
    return answer


def in_order(pool: ThreadPoolExecutor, call: Callable[[Any], Any], items: Iterable[Any], depth: int) -> Iterator[Any]:
    """`pool.map` with at most `depth` calls in flight: the input is read as it is sent, never all at once."""
    pending: deque[Future[Any]] = deque()
    for item in items:
        pending.append(pool.submit(call, item))
        if len(pending) >= depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def input_files(path: Path) -> list[Path]:
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    missing = [str(p) for p in files if not p.is_file()]
    if not files or missing:
        raise TransformError(f"{', '.join(missing) or path}: no input file")
    return files


def open_lines(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # type: ignore[return-value]


def transform_file(url: str, source: Path, output_dir: Path, max_bytes: int, max_concurrent: int) -> Counts:
    """One input file to OUTPUT/<name>.out: `max_concurrent` mini-batches in flight, answers assembled in order."""
    target = output_dir / f"{source.name}{OUTPUT_SUFFIX}"
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    total = Counts(1)
    try:
        with ExitStack() as files:
            lines = files.enter_context(open_lines(source))
            out = files.enter_context(open(scratch, "wb"))
            pool = files.enter_context(ThreadPoolExecutor(max_concurrent, thread_name_prefix="transform"))
            bar = files.enter_context(tqdm(desc=source.name, unit=" lines"))
            for answer in in_order(pool, partial(invoke, url), mini_batches(lines, max_bytes), max_concurrent):
                out.write(b"\n".join(answer) + b"\n")  # AssembleWith=Line: a newline after each answer
                counts = count_answers(answer)
                total = Counts(1, total.lines + counts.lines, total.errors + counts.errors)
                bar.update(counts.lines)
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)
    return total


def run_local(url: str, source: Path, output_dir: Path, max_bytes: int, max_concurrent: int) -> Counts:
    """Every file of `source` (a file or a folder) through the local endpoint into `output_dir`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    total = Counts()
    for path in input_files(source):
        total += transform_file(url, path, output_dir, max_bytes, max_concurrent)
    return total


# --- command line ---------------------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="a model folder made by training_jobs.train")
    parser.add_argument("--input", required=True, help="s3://bucket/prefix (every object under it) or a local path")
    parser.add_argument("--output", required=True, help="s3://bucket/prefix/ or a local folder: <input name>.out")
    parser.add_argument("--max-payload-mb", type=int, default=MAX_PAYLOAD_MB, help="mini-batch size (MultiRecord)")
    parser.add_argument("--max-concurrent", type=int, default=MAX_CONCURRENT, help="mini-batches in flight")
    aws = parser.add_argument_group("AWS (s3:// locations)")
    aws.add_argument("--region", default=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    aws.add_argument("--instance-type", default="ml.m5.xlarge")
    aws.add_argument("--instance-count", type=int, default=1, help="more instances share the input objects")
    aws.add_argument("--role", default=env.get("SAGEMAKER_ROLE_ARN"), help="default: $SAGEMAKER_ROLE_ARN")
    aws.add_argument("--bucket", default=env.get("SAGEMAKER_BUCKET"),
                     help="where the artifact goes (default: $SAGEMAKER_BUCKET, else OUTPUT's bucket)")
    aws.add_argument("--prefix", default="news-classifier/models", help="S3 key prefix of the versioned artifacts")
    aws.add_argument("--ecr-repository", default=env.get("ECR_REPOSITORY"),
                     help="the stage's ECR repository: the slim image is built and pushed there when docker works, "
                          "as for the endpoint (else the Hugging Face PyTorch image)")
    aws.add_argument("--image-uri", help="serve with this image instead (the slim image's URI, or the Hugging Face "
                                         "image's)")
    aws.add_argument("--gzip", action="store_true", help="the input objects are gzipped (implied by INPUT ending .gz)")
    aws.add_argument("--job-name", help="default: news-classifier-batch-<model version>-<start time>")
    aws.add_argument("--poll-seconds", type=float, default=30)
    aws.add_argument("--dry-run", action="store_true", help="print every AWS call instead of making it")
    local = parser.add_argument_group("local (file paths)")
    local.add_argument("--endpoint-url", help="a running local endpoint (default: start one from MODEL_DIR)")
    args = parser.parse_args(argv)
    remote = [location.startswith("s3://") for location in (args.input, args.output)]
    if remote[0] != remote[1]:
        parser.error("--input and --output must both be s3:// locations (AWS) or both local paths")
    args.aws = remote[0]
    if args.dry_run and not args.aws:
        parser.error("--dry-run prints the AWS calls of s3:// locations; local paths make none")
    if args.instance_count < 1:
        parser.error("--instance-count must be >= 1")
    return args


def transform_from_args(args: argparse.Namespace) -> tuple[TransformJob, str, str, list[Call]]:
    """The job described by the command line, the artifact's bucket and key, and in a dry run the image's calls:
    the same image choice as the endpoint's (model.tools.deploy)."""
    if not args.region:
        raise TransformError("pass --region or set AWS_REGION")
    if not args.role:
        raise TransformError("pass --role (or SAGEMAKER_ROLE_ARN)")
    model_version = read_metadata(args.model_dir)["model_version"]
    bucket = args.bucket or split_s3(args.output)[0]
    image, image_calls = serving_image(args)
    check_runtime(args.model_dir, image)
    key, uri = artifact_location(bucket, args.prefix, model_version, image.runtime)
    release = Release(BATCH_NAME, model_version, uri, image, args.role, Serverless())
    job = TransformJob(release, args.job_name or job_name(model_version), args.input, args.output,
                       args.instance_type, args.instance_count, Settings(args.max_payload_mb, args.max_concurrent),
                       args.gzip)
    return job, bucket, key, image_calls


def run(args: argparse.Namespace) -> None:
    settings = Settings(args.max_payload_mb, args.max_concurrent)
    if not args.aws:
        local = (Path(args.input), Path(args.output), settings.max_payload_bytes, settings.max_concurrent)
        if args.endpoint_url:
            counts = run_local(args.endpoint_url, *local)
        else:
            from model.tools.local_endpoint import running_endpoint

            with running_endpoint(args.model_dir) as url:
                counts = run_local(url, *local)
        print(f"{counts}: {args.output}")
        return
    job, bucket, key, image_calls = transform_from_args(args)
    if args.dry_run:
        print(*image_calls, *transform_plan(job, args.model_dir, bucket, key), sep="\n")
        return
    clients = Clients.create(args.region)
    counts = run_transform(clients, boto3_logs(args.region), job, args.model_dir, bucket, key, args.poll_seconds)
    print(f"{job.job_name} completed: {counts}: {job.output_uri}")


def boto3_logs(region: str) -> Any:
    import boto3

    return boto3.Session(region_name=region).client("logs")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command_line(run, parse_args(argv), (TransformError,))


if __name__ == "__main__":
    sys.exit(main())
