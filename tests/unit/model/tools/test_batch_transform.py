"""`make batch-transform`: the CreateTransformJob request on moto's server and through Stubber, the dry run without
credentials and against the calls a run makes, and the Transform contract end to end offline (line split,
mini-batches, /invocations, assembly)."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from model.artifact import read_metadata
from model.serving.inference import JSON_LINES
from model.tools import transform_job
from model.tools.batch_transform import main
from model.tools.endpoint import SageMakerClients
from model.tools.image import huggingface_image
from model.tools.release import Release, Serverless
from model.tools.transform_contract import Settings, TransformError, count_answers
from model.tools.transform_job import LOG_GROUP, TransformJob, run_transform
from model.tools.transform_local import mini_batches, run_local
from tests.support.recorded_calls import assert_all_made, run_then_dry_run

BUCKET = "news-data"
ROLE = "arn:aws:iam::123456789012:role/SageMakerInference"
SLIM_REPOSITORY = "news-classifier-serve"
SLIM_IMAGE = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{SLIM_REPOSITORY}:1"
HEADLINES = ["Fed leaves interest rates unchanged", "Apple unveils new iPhone", "Ebola outbreak spreads"]


@pytest.fixture
def aws(moto_session: boto3.Session) -> boto3.Session:
    """The bucket, and SLIM_IMAGE pushed to its repository (the job's Model names it by digest)."""
    moto_session.client("s3").create_bucket(Bucket=BUCKET)
    ecr = moto_session.client("ecr")
    ecr.create_repository(repositoryName=SLIM_REPOSITORY)
    ecr.put_image(repositoryName=SLIM_REPOSITORY, imageTag="1", imageManifest=json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "layers": [{"digest": f"sha256:{'2' * 64}"}]}))
    return moto_session


def transform_argv(model_dir: Path, *extra: str) -> list[str]:
    return ["--model-dir", str(model_dir), "--input", f"s3://{BUCKET}/feeds/day.jsonl", "--output",
            f"s3://{BUCKET}/labelled/", "--role", ROLE, "--region", "us-east-1", "--poll-seconds", "0", *extra]


def test_transform_job_runs_the_endpoints_artifact_with_the_line_contract(
        aws: boto3.Session, tiny_onnx_model_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    tiny_model_copy = tiny_onnx_model_dir  # read only: the transform packs it, as the endpoint's deployment does
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    answers = [{"label": "Business", "scores": {}, "model_version": "v"}, {"error": {"message": "blank line"}},
               {"label": "Health", "scores": {}, "model_version": "v"}]
    # moto completes a job at once without running it: the answers a run would have written, as SageMaker names them.
    s3.put_object(Bucket=BUCKET, Key="labelled/day.jsonl.out", Body="\n".join(map(json.dumps, answers)) + "\n")

    assert main(transform_argv(tiny_model_copy, "--instance-type", "ml.c5.2xlarge", "--instance-count", "3",
                               "--image-uri", SLIM_IMAGE)) == 0

    (job_summary,) = sm.list_transform_jobs()["TransformJobSummaries"]
    job = sm.describe_transform_job(TransformJobName=job_summary["TransformJobName"])
    assert job["BatchStrategy"] == "MultiRecord" and job["MaxPayloadInMB"] == 1
    assert job["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/feeds/day.jsonl"}},
        "ContentType": JSON_LINES, "SplitType": "Line", "CompressionType": "None"}
    assert job["TransformOutput"] == {"S3OutputPath": f"s3://{BUCKET}/labelled/", "Accept": JSON_LINES,
                                      "AssembleWith": "Line"}
    assert job["TransformResources"] == {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 3}
    model = sm.describe_model(ModelName=job["ModelName"])
    version = read_metadata(tiny_model_copy)["model_version"]
    key = f"news-classifier/models/{version}/model-onnx-int8.tar.gz"  # the endpoint's slim-image artifact
    (pushed,) = aws.client("ecr").describe_images(repositoryName=SLIM_REPOSITORY)["imageDetails"]
    assert model["PrimaryContainer"]["Image"] == f"{SLIM_IMAGE.removesuffix(':1')}@{pushed['imageDigest']}"
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{BUCKET}/{key}"
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0
    assert "2 headlines labelled, 1 lines answered with an error, in 1 output file(s)" in capsys.readouterr().out

    def no_second_upload(*args: Any) -> None:
        raise AssertionError("the artifact of this version is already in S3")

    monkeypatch.setattr(transform_job, "upload_artifact", no_second_upload)
    assert main(transform_argv(tiny_model_copy, "--job-name", "second-run", "--image-uri", SLIM_IMAGE)) == 0
    assert sm.describe_transform_job(TransformJobName="second-run")["ModelName"] == job["ModelName"]
    assert len(sm.list_models()["Models"]) == 1


def test_dry_run_prints_the_requests_without_credentials(tiny_model_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                 "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    def dry_run(*extra: str) -> dict[str, Any]:
        assert main(transform_argv(tiny_model_copy, "--dry-run", *extra)) == 0
        printed = capsys.readouterr().out
        return json.loads(re.search(r"sagemaker\.create_transform_job\n(\{.*?\n\})", printed, re.S).group(1))

    assert dry_run("--input", f"s3://{BUCKET}/feeds/a.jsonl.gz")["TransformInput"]["CompressionType"] == "Gzip"
    assert dry_run("--gzip")["TransformInput"]["CompressionType"] == "Gzip"
    request = dry_run()
    assert request["TransformInput"]["CompressionType"] == "None"
    assert request["ModelName"].startswith("news-classifier-batch-")
    assert request["TransformInput"]["SplitType"] == "Line" and request["BatchStrategy"] == "MultiRecord"
    assert request["MaxPayloadInMB"] * request["MaxConcurrentTransforms"] <= 100
    assert len(request["TransformJobName"]) <= 63


def test_a_dry_run_prints_every_call_that_a_transform_job_makes(
        aws: boto3.Session, tiny_onnx_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Real runs on moto, the first uploading the artifact and the second finding it: each makes only calls that the
    dry run of the same command prints, in the printed order, and the dry run sends none; every call the dry run
    prints, one of the runs makes."""
    aws.client("s3").put_object(Bucket=BUCKET, Key="labelled/day.jsonl.out", Body=json.dumps({"label": "Health"}))
    made: list[tuple[str, str]] = []
    for name in ("first-run", "second-run"):
        calls, printed = run_then_dry_run(main, transform_argv(tiny_onnx_model_dir, "--image-uri", SLIM_IMAGE,
                                                               "--job-name", name), capsys)
        made += calls
    assert_all_made(printed, made)


def stub_job() -> TransformJob:
    version = "news-20250101-000000-abcdef12"
    release = Release("news-classifier-batch", version,
                      f"s3://{BUCKET}/news-classifier/models/{version}/model-torch.tar.gz",
                      huggingface_image("us-east-1"), ROLE, Serverless())
    return TransformJob(release, "job-1", f"s3://{BUCKET}/in/", f"s3://{BUCKET}/out/", "ml.m5.xlarge", 2, Settings())


def test_a_failed_job_reports_its_reason_after_streaming_its_logs(capsys: pytest.CaptureFixture[str]) -> None:
    job = stub_job()
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    clients = SageMakerClients(session.client("s3"), session.client("sagemaker"), logs=session.client("logs"))
    status = {"TransformJobName": "job-1", "TransformJobArn": "arn:aws:sagemaker:us-east-1:1:transform-job/job-1",
              "ModelName": job.release.name, "TransformInput": job.request()["TransformInput"],
              "TransformResources": job.request()["TransformResources"], "CreationTime": "2025-01-01T00:00:00Z"}
    with Stubber(clients.s3) as s3, Stubber(clients.sagemaker) as sm, Stubber(clients.logs) as cw:
        key = job.release.artifact_uri.removeprefix(f"s3://{BUCKET}/")
        s3.add_response("head_object", {"ContentLength": 1}, {"Bucket": BUCKET, "Key": key})
        model = {"ModelName": job.release.name, "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m",
                 "CreationTime": "2025-01-01T00:00:00Z"}
        sm.add_response("describe_model", model, {"ModelName": job.release.name})
        sm.add_response("create_transform_job", {"TransformJobArn": status["TransformJobArn"]}, job.request())
        sm.add_response("describe_transform_job", {**status, "TransformJobStatus": "InProgress"},
                        {"TransformJobName": "job-1"})
        cw.add_client_error("filter_log_events", "ResourceNotFoundException")  # no instance started yet
        sm.add_response("describe_transform_job", {**status, "TransformJobStatus": "Failed",
                                                   "FailureReason": "ClientError: See job logs"},
                        {"TransformJobName": "job-1"})
        cw.add_response("filter_log_events", {"events": [
            {"logStreamName": "job-1/i-0abc-AlgoOperations", "timestamp": 1, "message": "model server failed\n",
             "eventId": "1"}]}, {"logGroupName": LOG_GROUP, "logStreamNamePrefix": "job-1/", "startTime": 0})
        with pytest.raises(TransformError, match="job-1: Failed: ClientError: See job logs"):
            run_transform(clients, job, Path("unused"), BUCKET, key, poll_seconds=0)
    assert "[i-0abc-AlgoOperations] model server failed" in capsys.readouterr().out


# --- the contract end to end, offline ------------------------------------------------------------------------------

def test_answers_are_counted_with_their_errors() -> None:
    lines = [b'{"label": "Business"}', b"", b'{"error": {"message": "blank line"}}', b"<html>", b"[1]", "{}"]
    counts = count_answers(lines)
    assert (counts.objects, counts.lines, counts.errors) == (1, 5, 3)


def test_mini_batches_keep_lines_whole_within_the_payload_limit() -> None:
    lines = [b'{"inputs": "%d"}\n' % i for i in range(50)]
    batches = list(mini_batches(lines, 100))
    assert [line for batch in batches for line in batch] == lines
    assert all(sum(map(len, batch)) <= 100 for batch in batches) and len(batches) > 5
    with pytest.raises(TransformError, match="line 2 is 11 bytes"):
        list(mini_batches([b"short\n", b"much longer"], 10))


def test_local_transform_answers_every_line_in_order_across_mini_batches(endpoint_url: str, tmp_path: Path) -> None:
    """The file split by line into mini-batches, posted to the local endpoint as Batch Transform does, assembled."""
    lines = [json.dumps({"inputs": f"{HEADLINES[i % 3]} (item {i})"}) for i in range(120)]
    bad = {7: "", 50: "not json", 51: json.dumps({"inputs": ["a", "b"]}), 119: json.dumps({"text": "x"})}
    for index, line in bad.items():
        lines[index] = line
    source = tmp_path / "day.jsonl"
    source.write_text("\n".join(lines) + "\n")

    counts = run_local(endpoint_url, source, tmp_path / "out", max_bytes=1500, max_concurrent=2)

    answers = [json.loads(line) for line in (tmp_path / "out" / "day.jsonl.out").read_text().splitlines()]
    assert len(answers) == len(lines) and (counts.lines, counts.errors) == (120, 4)
    assert sorted(i for i, answer in enumerate(answers) if "error" in answer) == sorted(bad)
    good = [i for i in range(len(lines)) if i not in bad]
    alone = classify_as_json(endpoint_url, [json.loads(lines[i])["inputs"] for i in good])
    for i, prediction in zip(good, alone["predictions"], strict=True):
        assert answers[i]["label"] == prediction["label"]
        assert answers[i]["scores"] == pytest.approx(prediction["scores"], abs=1e-4)
        assert answers[i]["model_version"] == alone["model_version"]


def classify_as_json(url: str, headlines: list[str]) -> dict[str, Any]:
    """One application/json request of all the headlines, for comparison."""
    request = urllib.request.Request(f"{url}/invocations", data=json.dumps({"inputs": headlines}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_command_line_local_mode_and_location_checks(endpoint_url: str, tiny_model_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text(json.dumps({"inputs": HEADLINES[0]}) + "\n")
    (tmp_path / "in" / "b.jsonl").write_text(json.dumps({"inputs": HEADLINES[1]}) + "\n\n")
    assert main(["--model-dir", str(tiny_model_dir), "--input", str(tmp_path / "in"), "--output",
                 str(tmp_path / "out"), "--endpoint-url", endpoint_url]) == 0
    assert "2 headlines labelled, 1 lines answered with an error, in 2 output file(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jsonl.out", "b.jsonl.out"]
    with pytest.raises(SystemExit):
        main(["--model-dir", str(tiny_model_dir), "--input", "s3://b/in/", "--output", str(tmp_path)])
