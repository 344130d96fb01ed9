"""Classify files of headlines with SageMaker Batch Transform, on the endpoint's artifact and image.

    python -m model.tools.batch_transform --model-dir artifacts/model --input s3://B/in/ --output s3://B/out/

JSON Lines in, one answer per line out, in order (model/tools/transform_job.py; `--dry-run` prints the job's calls
and needs no credentials); with local paths the same contract runs on a local endpoint, so it can be tried without
AWS (model/tools/transform_local.py, docs/serving.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from devkit.plan import Step, show
from model.artifact import read_metadata
from model.tools.deploy_endpoint import run_command_line
from model.tools.endpoint import SageMakerClients
from model.tools.image import Registry, serving_image
from model.tools.release import Release, Serverless, artifact_location, check_runtime
from model.tools.transform_contract import MAX_CONCURRENT, MAX_PAYLOAD_MB, Settings, TransformError
from model.tools.transform_job import (
    BATCH_NAME,
    TransformJob,
    job_name,
    run_transform,
    split_s3,
    transform_plan,
)
from model.tools.transform_local import run_local


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


def transform_from_args(args: argparse.Namespace) -> tuple[TransformJob, str, str, list[Step[Registry]]]:
    """The job described by the command line, the artifact's bucket and key, and in a dry run the image's plan (its
    push, or its pin to a digest): the same image choice as the endpoint's (model.tools.deploy_endpoint)."""
    if not args.region:
        raise TransformError("pass --region or set AWS_REGION")
    if not args.role:
        raise TransformError("pass --role (or SAGEMAKER_ROLE_ARN)")
    model_version = read_metadata(args.model_dir)["model_version"]
    bucket = args.bucket or split_s3(args.output)[0]
    image, push = serving_image(args.region, args.image_uri, args.ecr_repository, args.dry_run)
    check_runtime(args.model_dir, image)
    key, uri = artifact_location(bucket, args.prefix, model_version, image.runtime)
    release = Release(BATCH_NAME, model_version, uri, image, args.role, Serverless())
    job = TransformJob(release, args.job_name or job_name(model_version), args.input, args.output,
                       args.instance_type, args.instance_count, Settings(args.max_payload_mb, args.max_concurrent),
                       args.gzip)
    return job, bucket, key, push


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
    job, bucket, key, push = transform_from_args(args)
    if args.dry_run:
        show([*push, *transform_plan(job, args.model_dir, bucket, key, args.poll_seconds)])
        return
    counts = run_transform(SageMakerClients.create(args.region), job, args.model_dir, bucket, key, args.poll_seconds)
    print(f"{job.job_name} completed: {counts}: {job.output_uri}")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command_line(run, parse_args(argv), (TransformError,))


if __name__ == "__main__":
    sys.exit(main())
