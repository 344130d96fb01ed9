"""Run `training_jobs/train.py` as a SageMaker training job in the Hugging Face PyTorch training image.

    python -m training_jobs.launch --role ROLE_ARN --bucket BUCKET --instance-type ml.g5.xlarge --epochs 3

Hyperparameters are train.py's own flags, passed unchanged, so a local run and a job differ only in where they run
(docs/aws-deployment.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from sagemaker.core import image_uris
from sagemaker.core.helper.iam_role_resolver import RoleValidationError
from sagemaker.core.helper.session_helper import Session
from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig, SourceCode, StoppingCondition
from sagemaker.core.utils.exceptions import WaiterError
from sagemaker.train import ModelTrainer
from sagemaker.train.constants import SM_CODE_CONTAINER_PATH
from sagemaker.train.distributed import Torchrun

from training_jobs.config import (
    REPO_ROOT,
    add_hyperparameter_arguments,
    default_data_dir,
    hyperparameters_from_args,
    training_channel,
)
from training_jobs.uci_archive import available

log = logging.getLogger("training_jobs.launch")

# Hugging Face PyTorch training image: transformers 5 on PyTorch 2.9 (GPU only).
TRAINING_IMAGE = {"framework": "huggingface", "version": "5.3.0", "base_framework_version": "pytorch2.9.0",
                  "py_version": "py312", "image_scope": "training"}
CODE_PACKAGES = ("training_jobs", "model")
ENTRY_SCRIPT = "training_jobs/train.py"
REQUIREMENTS = "training_jobs/requirements-sagemaker.txt"
GPU_INSTANCE_PREFIXES = ("ml.p", "ml.g")
JOB_NAME = "news-classifier"


class LaunchError(ValueError):
    """The launch cannot start as asked; the message says what to change."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    aws = parser.add_argument_group("AWS")
    aws.add_argument("--role", default=os.environ.get("SAGEMAKER_ROLE_ARN"),
                     help="IAM role the job runs as (default: $SAGEMAKER_ROLE_ARN)")
    aws.add_argument("--bucket", default=os.environ.get("SAGEMAKER_BUCKET"),
                     help="S3 bucket for code, data and output (default: $SAGEMAKER_BUCKET, else the SDK's "
                          "sagemaker-<region>-<account>)")
    aws.add_argument("--region", help="default: the AWS configuration's region")
    aws.add_argument("--output-path", help="S3 prefix for the job's model.tar.gz (default: s3://BUCKET/JOB_NAME)")
    aws.add_argument("--job-name", default=JOB_NAME, help="base name; the SDK appends a timestamp")
    aws.add_argument("--image-uri", help="training image (default: the Hugging Face PyTorch GPU image of the region)")
    aws.add_argument("--instance-type", default="ml.g5.xlarge")
    aws.add_argument("--instance-count", type=int, default=1)
    aws.add_argument("--volume-size", type=int, default=30, help="GB of EBS per instance")
    aws.add_argument("--max-run", type=int, default=4 * 3600, help="seconds of training before SageMaker stops it")
    aws.add_argument("--spot", action="store_true", help="managed spot training (cheaper; may wait for capacity)")
    aws.add_argument("--max-wait", type=int, help="seconds of training plus waiting for spot (default: 2 x max-run)")
    aws.add_argument("--no-wait", dest="wait", action="store_false", help="return once the job is created")
    data = parser.add_argument_group("data channels (local paths are uploaded; s3:// URIs are used as they are)")
    data.add_argument("--data", default=str(training_channel(default_data_dir())),
                      help="the `train` channel: the NLP-100 train/valid/test TSVs, or one data file to split (all of "
                           "it: jobs take no sample)")
    data.add_argument("--test-data", help="optional `test` channel replacing the test split")
    add_hyperparameter_arguments(parser)
    return parser.parse_args(argv)


def uses_torchrun(instance_type: str, instance_count: int) -> bool:
    """GPU instances (one process per GPU) and multi-instance jobs go through torchrun."""
    return instance_count > 1 or instance_type.startswith(GPU_INSTANCE_PREFIXES)


def training_image(region: str, instance_type: str) -> str:
    if not instance_type.startswith(GPU_INSTANCE_PREFIXES):
        raise LaunchError(f"{instance_type}: the Hugging Face PyTorch training image is GPU-only; choose an "
                          "ml.g*/ml.p* instance or pass --image-uri")
    return image_uris.retrieve(region=region, instance_type=instance_type, **TRAINING_IMAGE)


def stopping_condition(max_run: int, spot: bool, max_wait: int | None) -> StoppingCondition:
    """Spot jobs need a wait budget at least as long as the run budget."""
    if not spot:
        if max_wait is not None:
            raise LaunchError("--max-wait applies to spot training only; add --spot")
        return StoppingCondition(max_runtime_in_seconds=max_run)
    max_wait = max_wait or 2 * max_run
    if max_wait < max_run:
        raise LaunchError(f"--max-wait {max_wait} must be at least --max-run {max_run}")
    return StoppingCondition(max_runtime_in_seconds=max_run, max_wait_time_in_seconds=max_wait)


def data_channel(name: str, source: str) -> InputData:
    if not source.startswith("s3://") and not Path(source).exists():
        raise LaunchError(f"--{'test-' if name == 'test' else ''}data {source}: no such file or folder")
    return InputData(channel_name=name, data_source=source)


def stage_source(folder: Path) -> Path:
    """Copy exactly what the job runs into `folder`: the packages train.py imports and its requirements."""
    for package in CODE_PACKAGES:
        shutil.copytree(REPO_ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return folder


def build_trainer(args: argparse.Namespace, session: Session, source_dir: Path) -> ModelTrainer:
    if args.instance_count < 1:
        raise LaunchError("--instance-count must be at least 1")
    return ModelTrainer(
        sagemaker_session=session,
        role=args.role,
        base_job_name=args.job_name,
        training_image=args.image_uri or training_image(session.boto_region_name, args.instance_type),
        source_code=SourceCode(source_dir=str(source_dir), entry_script=ENTRY_SCRIPT, requirements=REQUIREMENTS),
        # train.py imports `model` and `training_jobs` from the code channel's root.
        environment={"PYTHONPATH": SM_CODE_CONTAINER_PATH},
        distributed=Torchrun() if uses_torchrun(args.instance_type, args.instance_count) else None,
        compute=Compute(instance_type=args.instance_type, instance_count=args.instance_count,
                        volume_size_in_gb=args.volume_size, enable_managed_spot_training=args.spot),
        stopping_condition=stopping_condition(args.max_run, args.spot, args.max_wait),
        output_data_config=OutputDataConfig(s3_output_path=args.output_path) if args.output_path else None,
        hyperparameters=hyperparameters_from_args(args).as_flags(),
    )


def launch(args: argparse.Namespace, boto_session: boto3.Session) -> str:
    """Start the job; return the model.tar.gz URI once it completes, or the job name with --no-wait."""
    if not args.role:
        raise LaunchError("pass --role or set SAGEMAKER_ROLE_ARN: the IAM role SageMaker runs the job as")
    train_data = args.data if args.data.startswith("s3://") else str(available(Path(args.data)))
    channels = [data_channel("train", train_data)] + ([data_channel("test", args.test_data)] if args.test_data else [])
    session = Session(boto_session=boto_session, default_bucket=args.bucket)
    with tempfile.TemporaryDirectory(prefix="news-classifier-code-") as tmp:
        trainer = build_trainer(args, session, stage_source(Path(tmp)))
        trainer.train(input_data_config=channels, wait=args.wait, logs=args.wait)
    job = trainer._latest_training_job  # the SDK's documented handle on the job it just created
    return job.model_artifacts.s3_model_artifacts if args.wait else job.training_job_name


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        result = launch(args, boto3.Session(region_name=args.region))
    except (ValueError, RoleValidationError) as exc:  # LaunchError and the SDK's own input checks
        log.error("%s", exc)
        return 2
    except (ClientError, BotoCoreError, WaiterError) as exc:
        log.error("training job failed: %s", exc)
        return 1
    print(result if args.wait else f"started training job {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
