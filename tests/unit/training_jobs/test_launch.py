"""`training_jobs.launch` against moto's server: the CreateTrainingJob request, the S3 uploads, and the shipped
code run the way the SageMaker container runs it (the SDK's own driver turns hyperparameters into flags)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from sagemaker.core.training.configs import StoppingCondition
from sagemaker.train.container_drivers.common.utils import hyperparameters_to_cli_args

from locking.lockfile import pins
from tests.support.archive_server import Answer, archive_server, corpus_text, uci_zip
from training_jobs import config
from training_jobs.config import Hyperparameters, splits_dir
from training_jobs.data import load_splits
from training_jobs.launch import (
    LaunchError,
    launch,
    main,
    parse_args,
    stopping_condition,
    training_image,
    uses_torchrun,
)
from training_jobs.train import parse_args as train_parse_args

BUCKET = "news-training"
ROLE = "arn:aws:iam::123456789012:role/SageMakerTraining"
GPU_IMAGE = ("763104351884.dkr.ecr.us-east-1.amazonaws.com/"
             "huggingface-pytorch-training:2.9.0-transformers5.3.0-gpu-py312-cu130-ubuntu22.04")
SPLIT_ROWS = {"train.tsv": 240, "valid.tsv": 80, "test.tsv": 80}


def small_split(data_dir: Path, folder: Path) -> Path:
    """The first rows of the real NLP-100 split: a real `train` channel that trains in seconds."""
    folder.mkdir()
    for name, rows in SPLIT_ROWS.items():
        lines = (splits_dir(data_dir) / name).read_text().splitlines(keepends=True)
        (folder / name).write_text("".join(lines[: rows + 1]))
    return folder


@pytest.fixture
def aws(moto_url: str, aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")  # moto has no iam:SimulatePrincipalPolicy
    session = boto3.Session(region_name="us-east-1")
    session.client("s3").create_bucket(Bucket=BUCKET)
    return session


def launch_job(session: boto3.Session, argv: list[str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Run the launcher; return the printed model URI, DescribeTrainingJob and the CreateTrainingJob params."""
    sent: list[dict[str, Any]] = []
    session.events.register("provide-client-params.sagemaker.CreateTrainingJob",
                            lambda params, **_: sent.append(params))
    uri = launch(parse_args(["--role", ROLE, "--bucket", BUCKET, *argv]), session)
    assert len(sent) == 1
    job = session.client("sagemaker").describe_training_job(TrainingJobName=sent[0]["TrainingJobName"])
    return uri, job, sent[0]


def download(session: boto3.Session, s3_uri: str, folder: Path) -> Path:
    bucket, _, prefix = s3_uri.removeprefix("s3://").partition("/")
    s3 = session.client("s3")
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["Contents"]:
        target = folder / obj["Key"][len(prefix) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, obj["Key"], str(target))
    return folder


def channel_uris(job: dict[str, Any]) -> dict[str, str]:
    return {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}


@pytest.fixture
def hyperparameter_argv(tiny_encoder_dir: Path) -> list[str]:
    return ["--base-model", str(tiny_encoder_dir), "--epochs", "1", "--max-length", "32",
            "--learning-rate", "3e-4", "--freeze-embeddings", "false", "--seed", "7"]


def test_create_training_job_request(aws: boto3.Session, data_dir: Path, tmp_path: Path,
                                     hyperparameter_argv: list[str]) -> None:
    test_file = tmp_path / "extra_test.tsv"
    test_file.write_text("category\ttitle\nb\tStocks rally as bank profits jump\n")
    uri, job, sent = launch_job(aws, [
        "--data", str(small_split(data_dir, tmp_path / "split")), "--test-data", str(test_file),
        "--output-path", f"s3://{BUCKET}/jobs", "--instance-type", "ml.g5.2xlarge", "--instance-count", "2",
        "--spot", "--max-run", "3600", *hyperparameter_argv])

    name = job["TrainingJobName"]
    assert name.startswith("news-classifier-")
    assert uri == f"s3://{BUCKET}/jobs/{name}/output/model.tar.gz" == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert job["AlgorithmSpecification"]["TrainingImage"] == GPU_IMAGE
    assert job["RoleArn"] == ROLE
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/jobs"
    assert job["ResourceConfig"] == {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30}
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert set(channel_uris(job)) == {"train", "test", "code", "sm_drivers"}
    assert sent["Environment"] == {"PYTHONPATH": "/opt/ml/input/data/code"}  # moto does not store it
    expected = Hyperparameters(base_model=hyperparameter_argv[1], epochs=1, max_length=32, learning_rate=3e-4,
                               freeze_embeddings=False, seed=7)
    assert job["HyperParameters"] == {k: json.dumps(v) if not isinstance(v, str) else v
                                      for k, v in expected.as_flags().items()}


def test_uploads_data_code_and_torchrun_driver(aws: boto3.Session, data_dir: Path, tmp_path: Path) -> None:
    split = small_split(data_dir, tmp_path / "split")
    _, job, _ = launch_job(aws, ["--data", str(split), "--instance-count", "2", "--epochs", "1"])
    channels = channel_uris(job)

    train = download(aws, channels["train"], tmp_path / "train")
    assert {p.name: p.read_bytes() for p in train.iterdir()} == {p.name: p.read_bytes() for p in split.iterdir()}
    code = download(aws, channels["code"], tmp_path / "code")
    shipped = {str(p.relative_to(code)) for p in code.rglob("*") if p.is_file()}
    assert {"training_jobs/train.py", "training_jobs/requirements-sagemaker.txt", "model/classifier.py",
            "model/artifact.py", "model/serving/inference.py"} <= shipped
    assert {p.split("/")[0] for p in shipped} == {"training_jobs", "model"}
    assert not any("__pycache__" in p for p in shipped)
    requirements = pins((code / "training_jobs/requirements-sagemaker.txt").read_text())
    assert requirements["scikit-learn"] == "1.9.1" and "torch" not in requirements

    drivers = download(aws, channels["sm_drivers"], tmp_path / "drivers")
    source = json.loads((drivers / "sourcecode.json").read_text())
    assert source["entry_script"] == "training_jobs/train.py"
    assert source["requirements"] == "training_jobs/requirements-sagemaker.txt"
    assert "torchrun_driver.py" in (drivers / "sm_train.sh").read_text()
    assert "install_requirements.py training_jobs/requirements-sagemaker.txt" in (drivers / "sm_train.sh").read_text()


def test_single_cpu_instance_runs_the_script_without_torchrun(aws: boto3.Session, data_dir: Path,
                                                              tmp_path: Path) -> None:
    _, job, _ = launch_job(aws, ["--data", str(small_split(data_dir, tmp_path / "split")),
                                 "--instance-type", "ml.m5.xlarge", "--image-uri", "my/cpu-image:1"])
    assert job["AlgorithmSpecification"]["TrainingImage"] == "my/cpu-image:1"
    sm_train = (download(aws, channel_uris(job)["sm_drivers"], tmp_path / "drivers") / "sm_train.sh").read_text()
    assert "basic_script_driver.py" in sm_train and "torchrun_driver.py" not in sm_train


@pytest.mark.slow
def test_shipped_code_trains_as_the_container_runs_it(aws: boto3.Session, data_dir: Path, tmp_path: Path,
                                                     hyperparameter_argv: list[str]) -> None:
    """Only the uploaded channels, PYTHONPATH from the request, SM_* paths and the SDK's flag conversion."""
    _, job, sent = launch_job(aws, ["--data", str(small_split(data_dir, tmp_path / "split")), *hyperparameter_argv])
    channels = channel_uris(job)
    code = download(aws, channels["code"], tmp_path / "code")
    env = {**os.environ, **sent["Environment"], "PYTHONPATH": str(code),
           "SM_CHANNEL_TRAIN": str(download(aws, channels["train"], tmp_path / "input" / "train")),
           "SM_MODEL_DIR": str(tmp_path / "model"), "SM_OUTPUT_DATA_DIR": str(tmp_path / "output")}
    command = [sys.executable, "training_jobs/train.py", *hyperparameters_to_cli_args(job["HyperParameters"])]
    run = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True, timeout=300)

    assert run.returncode == 0, run.stderr[-2000:]
    metadata = json.loads((tmp_path / "model" / "training.json").read_text())
    assert metadata["hyperparameters"] == Hyperparameters(
        base_model=hyperparameter_argv[1], epochs=1, max_length=32, learning_rate=3e-4, freeze_embeddings=False,
        seed=7).as_dict()
    assert metadata["data"]["counts"]["train"] and sum(metadata["data"]["counts"]["train"].values()) <= 240
    assert (tmp_path / "output" / "metrics.json").is_file()
    assert (tmp_path / "model" / "code" / "inference.py").is_file()


def test_without_data_a_job_trains_on_the_whole_downloaded_corpus(aws: boto3.Session, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No data folder: the launcher fetches the UCI corpus (here from a local stand-in) and uploads the file whole;
    in the job's channel folder it is the data, unsampled."""
    monkeypatch.delenv("NEWS_DATA_DIR", raising=False)
    monkeypatch.setattr(config, "SHARED_DATA_DIR", tmp_path / "no-shared")
    monkeypatch.setenv("NEWS_CACHE_DIR", str(tmp_path / "cache"))
    with archive_server() as server:
        server.answers["/news+aggregator.zip"] = Answer(uci_zip(corpus_text(500)))
        monkeypatch.setenv("NEWS_CORPUS_URL", server.url("/news+aggregator.zip"))
        _, job, _ = launch_job(aws, ["--instance-type", "ml.m5.xlarge", "--image-uri", "my/cpu-image:1"])
    bucket, _, key = channel_uris(job)["train"].removeprefix("s3://").partition("/")
    assert key.endswith("/newsCorpora.csv")  # the prefix is the one object: the job's folder holds it by its name
    channel = tmp_path / "input" / "train"
    channel.mkdir(parents=True)
    aws.client("s3").download_file(bucket, key, str(channel / "newsCorpora.csv"))
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(channel))
    splits = load_splits(channel, seed=13, sample=train_parse_args([]).sample)
    assert splits.sample is not None and splits.sample["rows"] == splits.sample["of"] == 500


def test_torchrun_for_gpus_and_several_instances() -> None:
    assert uses_torchrun("ml.g5.12xlarge", 1) and uses_torchrun("ml.p4d.24xlarge", 1)
    assert uses_torchrun("ml.m5.xlarge", 2)
    assert not uses_torchrun("ml.m5.xlarge", 1)


def test_training_image_follows_the_region_and_refuses_cpu() -> None:
    assert training_image("eu-west-1", "ml.g5.xlarge").startswith("763104351884.dkr.ecr.eu-west-1.amazonaws.com/")
    with pytest.raises(LaunchError, match="GPU-only"):
        training_image("us-east-1", "ml.m5.xlarge")


def test_spot_budget_is_checked() -> None:
    assert stopping_condition(600, spot=False, max_wait=None) == StoppingCondition(max_runtime_in_seconds=600)
    assert stopping_condition(600, spot=True, max_wait=None).max_wait_time_in_seconds == 1200
    with pytest.raises(LaunchError, match="spot training only"):
        stopping_condition(600, spot=False, max_wait=900)
    with pytest.raises(LaunchError, match="at least --max-run"):
        stopping_condition(600, spot=True, max_wait=300)


@pytest.mark.parametrize(("argv", "message"), [
    (["--data", "/no/such/folder"], "no such file or folder"),
    (["--instance-count", "0"], "at least 1"),
])
def test_bad_input_is_a_clear_error(aws: boto3.Session, argv: list[str], message: str,
                                    caplog: pytest.LogCaptureFixture) -> None:
    assert main(["--role", ROLE, "--bucket", BUCKET, *argv]) == 2
    assert message in caplog.text


def test_missing_role_is_a_clear_error(aws: boto3.Session, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("SAGEMAKER_ROLE_ARN", raising=False)
    assert main(["--bucket", BUCKET]) == 2
    assert "SAGEMAKER_ROLE_ARN" in caplog.text
