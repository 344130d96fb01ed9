"""Serve a model folder from a SageMaker Serverless Inference endpoint: create, update without downtime, delete.

    python -m model.tools.deploy_endpoint deploy|image|delete ... [--dry-run]

The command line of model/tools/endpoint.py's plans: a run makes their calls, `--dry-run` prints them and needs no
credentials. Names carry the model version (model/tools/release.py); a failed update goes back to the previous
config (docs/aws-deployment.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from devkit.plan import Step, show
from model.artifact import DRIFT_BASELINE_FILE, read_metadata
from model.tools.endpoint import SageMakerClients, delete, delete_plan, deploy, deploy_plan
from model.tools.image import ImageError, Registry, serving_image
from model.tools.release import Release, ReleaseError, Serverless, artifact_location, check_runtime

log = logging.getLogger("model.tools.deploy_endpoint")


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
                                        "before (`image` prints it; by tag or digest, served by digest) or the "
                                        "region's Hugging Face image")
    up.add_argument("--memory", type=int, default=Serverless.memory_mb, help="MB: 1024, 2048, ... 6144")
    up.add_argument("--max-concurrency", type=int, default=Serverless.max_concurrency)
    up.add_argument("--provisioned-concurrency", type=int, help="warm instances (billed while idle)")
    up.add_argument("--timeout-seconds", type=float, default=1800, help="give up waiting for InService after this")
    commands.add_parser("delete", parents=[common], help="delete the endpoint, its configs and its models")
    return parser.parse_args(argv)


def check_release_inputs(args: argparse.Namespace) -> str:
    """Refuse what would fail later, before any image is built; return the model version."""
    for flag, value in (("--bucket (or SAGEMAKER_BUCKET)", args.bucket), ("--role (or SAGEMAKER_ROLE_ARN)", args.role)):
        if not value:
            raise ReleaseError(f"pass {flag}")
    model_version = read_metadata(args.model_dir)["model_version"]
    if not (args.model_dir / DRIFT_BASELINE_FILE).is_file():
        raise ReleaseError(f"{args.model_dir} has no {DRIFT_BASELINE_FILE} (training writes it); add it with "
                           f"`python -m training_jobs.drift_baseline --model-dir {args.model_dir}`")
    return model_version


def release_from_args(args: argparse.Namespace) -> tuple[Release, str, list[Step[Registry]]]:
    """The release described by the command line, the artifact's S3 key, and in a dry run the image's plan (its push,
    or its pin to a digest)."""
    model_version = check_release_inputs(args)
    serverless = Serverless(args.memory, args.max_concurrency, args.provisioned_concurrency)
    image, push = serving_image(args.region, args.image_uri, args.ecr_repository, args.dry_run)
    check_runtime(args.model_dir, image)
    key, uri = artifact_location(args.bucket, args.prefix, model_version, image.runtime)
    return Release(args.endpoint, model_version, uri, image, args.role, serverless), key, push


def run(args: argparse.Namespace) -> None:
    if not args.region:
        raise ReleaseError("pass --region or set AWS_REGION")
    if args.command == "delete":
        if args.dry_run:
            show(delete_plan(args.endpoint, args.poll_seconds))
        else:
            print(*delete(SageMakerClients.create(args.region), args.endpoint, args.poll_seconds), sep="\n")
        return
    if args.command == "image":
        image, push = serving_image(args.region, None, args.ecr_repository, args.dry_run)
        show(push)
        print(json.dumps({"kind": image.kind, "uri": image.uri, "runtime": image.runtime}))
        return
    release, key, push = release_from_args(args)
    if args.dry_run:
        show([*push, *deploy_plan(release, args.model_dir, args.bucket, key, args.poll_seconds, args.timeout_seconds)])
        return
    deploy(SageMakerClients.create(args.region), release, args.model_dir, args.bucket, key, args.poll_seconds,
           args.timeout_seconds)
    print(f"{release.endpoint} serves {release.model_version} from {release.artifact_uri} (config {release.name}) "
          f"with the {release.image.kind} image {release.image.uri} ({release.image.runtime})")


def run_command_line(run: Callable[[argparse.Namespace], None], args: argparse.Namespace,
                     refusals: tuple[type[Exception], ...] = ()) -> int:
    """Run a deployment tool: 2 for what it refuses (the message says what to change), 1 when AWS refuses."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        run(args)
    except (ReleaseError, ImageError, FileNotFoundError, *refusals) as exc:
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
