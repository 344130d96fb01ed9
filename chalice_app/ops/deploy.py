"""`make deploy STAGE=dev`: model endpoint, then one CloudFormation stack with the API, its table, key and alarms.

    python -m chalice_app.ops.deploy --stage dev --model-dir artifacts/model --bucket my-bucket [--dry-run]

1. `python -m model.deploy deploy`: the model folder to S3 and the stage's serverless endpoint (ENDPOINT_NAME).
2. `chalice package --merge-template infra/resources.yaml`: Chalice's SAM template (Lambda, REST API, role from
   .chalice/policy-<stage>.json) merged with the table, API key, usage plan, alarms and dashboard.
3. The Lambda zip and the template to S3, then a CloudFormation change set: the table, the role that may use
   it and the function that writes to it are created together, so the API never runs against a missing table.
4. The API URL and the API key's id are printed.

`chalice deploy` is not used: it cannot create the merged resources. `--dry-run` prints every command and AWS
call (the endpoint step prints its own) and needs no credentials. The stage's variables in .chalice/config.json
name the endpoint, table and metrics namespace; they become the stack's parameters.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError, WaiterError
from chalicelib.config import SERVICE_NAME, exposure_problems, settings_problems

from chalice_app.ops.stages import CHALICE_DIR, CONFIG_FILE, function_name, stage_environment

REPO_ROOT = CHALICE_DIR.parent
CHALICE_BIN = Path(sys.executable).with_name("chalice")
MERGE_TEMPLATE = Path("infra") / "resources.yaml"
PACKAGE_PREFIX = "news-classifier/api"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]  # the role; SAM's transform
NO_CHANGES = "didn't contain changes"
Runner = Callable[[Sequence[str], Path, dict[str, str] | None], None]


class DeployError(RuntimeError):
    """The deployment stopped; the message says where and why."""


@dataclass(frozen=True)
class Stage:
    """What one Chalice stage deploys, read from .chalice/config.json."""

    name: str
    api_stage: str
    environment: dict[str, str]

    @classmethod
    def load(cls, name: str) -> Stage:
        """An AWS stage: one with a hand-written policy, which names the resources this stack creates, and
        settings the API accepts (a broken one would fail requests, or leave them unrecorded, after deploying)."""
        try:
            environment = stage_environment(name)
        except ValueError as exc:
            raise DeployError(str(exc)) from exc
        config = json.loads(CONFIG_FILE.read_text())["stages"][name]
        if config.get("autogen_policy", True) or "iam_policy_file" not in config:
            raise DeployError(f"stage {name!r} has no hand-written policy (autogen_policy, iam_policy_file): "
                              "it is not meant for AWS")
        problems = settings_problems(environment)
        if problems:
            raise DeployError(f"stage {name!r} in {CONFIG_FILE}: the API would refuse {'; '.join(problems)}")
        exposed = exposure_problems(environment)
        if exposed:
            raise DeployError(f"stage {name!r} in {CONFIG_FILE} would be open on AWS: {'; '.join(exposed)}")
        return cls(name, config.get("api_gateway_stage", "api"), environment)

    @property
    def stack_name(self) -> str:
        return function_name(self.name)

    def parameters(self, artifact_bucket: str) -> dict[str, str]:
        """The merge template's parameters: one value per fact, each from the stage config, chalicelib or the
        bucket the model versions (and their drift baselines) are uploaded to."""
        return {"StageName": self.api_stage, "ApiName": json.loads(CONFIG_FILE.read_text())["app_name"],
                "FunctionName": function_name(self.name), "TableName": self.environment["TABLE_NAME"],
                "EndpointName": self.environment["ENDPOINT_NAME"],
                "MetricsNamespace": self.environment["POWERTOOLS_METRICS_NAMESPACE"], "ServiceName": SERVICE_NAME,
                "ArtifactBucket": artifact_bucket}


def run_command(command: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    if subprocess.run(list(command), cwd=cwd, env=env).returncode != 0:
        raise DeployError(f"`{shlex.join(command)}` failed (in {cwd})")


def endpoint_command(stage: Stage, model_dir: Path, bucket: str, region: str, extra: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "model.deploy", "deploy", "--model-dir", str(model_dir.resolve()),
            "--endpoint", stage.environment["ENDPOINT_NAME"], "--bucket", bucket, "--region", region, *extra]


def package_command(stage: Stage, out_dir: Path) -> list[str]:
    return [str(CHALICE_BIN), "package", "--stage", stage.name, "--merge-template", str(MERGE_TEMPLATE),
            str(out_dir)]


def package_api(stage: Stage, out_dir: Path, region: str, run: Runner = run_command) -> Path:
    """`chalice package` from a clean copy of the project; returns the merged template (sam.yaml).

    A copy, because Chalice reuses a zip from .chalice/deployments keyed without pip's options; PIP_NO_DEPS,
    because requirements.txt lists the whole closure minus what the Lambda runtime has (boto3, botocore).
    """
    with tempfile.TemporaryDirectory(prefix="chalice-build-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(CHALICE_DIR, project, ignore=shutil.ignore_patterns("deployments", "venv", "__pycache__"))
        env = {**os.environ, "PIP_NO_DEPS": "1", "AWS_DEFAULT_REGION": region}
        run(package_command(stage, out_dir.resolve()), project, env)
    return out_dir / "sam.yaml"


def template_url(bucket: str, region: str, key: str) -> str:
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def upload_package(s3: Any, package_dir: Path, bucket: str, region: str, stage: Stage) -> str:
    """Upload the zip under its content digest, point CodeUri at it, upload the template; return its URL."""
    archive = package_dir / "deployment.zip"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    code_key = f"{PACKAGE_PREFIX}/{stage.name}/{digest}.zip"
    s3.upload_file(str(archive), bucket, code_key)
    template = yaml.safe_load((package_dir / "sam.yaml").read_text())
    template["Resources"]["APIHandler"]["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": code_key}
    template_key = f"{PACKAGE_PREFIX}/{stage.name}/{digest}.template.json"
    s3.put_object(Bucket=bucket, Key=template_key, Body=json.dumps(template).encode())
    return template_url(bucket, region, template_key)


def _stack_exists(cfn: Any, stack_name: str) -> bool:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return False
        raise
    return stacks[0]["StackStatus"] != "REVIEW_IN_PROGRESS"  # a change set that was never executed


def change_set_request(stack_name: str, template_url: str, parameters: dict[str, str], exists: bool,
                       change_set_name: str) -> dict[str, Any]:
    return {"StackName": stack_name, "ChangeSetName": change_set_name, "TemplateURL": template_url,
            "ChangeSetType": "UPDATE" if exists else "CREATE", "Capabilities": CAPABILITIES,
            "Parameters": [{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
            "Tags": [{"Key": "project", "Value": "news-classifier"}]}


def deploy_stack(cfn: Any, stack_name: str, template_url: str, parameters: dict[str, str],
                 change_set_name: str, poll_seconds: float = 10) -> dict[str, str]:
    """Create or update the stack through a change set; return its outputs. No changes is not an error."""
    exists = _stack_exists(cfn, stack_name)
    cfn.create_change_set(**change_set_request(stack_name, template_url, parameters, exists, change_set_name))
    waiter_config = {"Delay": poll_seconds, "MaxAttempts": 360}
    try:
        cfn.get_waiter("change_set_create_complete").wait(StackName=stack_name, ChangeSetName=change_set_name,
                                                          WaiterConfig=waiter_config)
    except WaiterError as exc:
        reason = cfn.describe_change_set(StackName=stack_name, ChangeSetName=change_set_name).get("StatusReason", "")
        if NO_CHANGES not in reason:
            raise DeployError(f"change set {change_set_name} failed: {reason or exc}") from exc
        cfn.delete_change_set(StackName=stack_name, ChangeSetName=change_set_name)
    else:
        cfn.execute_change_set(StackName=stack_name, ChangeSetName=change_set_name)
        waiter = "stack_update_complete" if exists else "stack_create_complete"
        try:
            cfn.get_waiter(waiter).wait(StackName=stack_name, WaiterConfig=waiter_config)
        except WaiterError as exc:
            raise DeployError(f"stack {stack_name} did not deploy ({exc}); see its events in the console") from exc
    outputs = cfn.describe_stacks(StackName=stack_name)["Stacks"][0].get("Outputs", [])
    return {output["OutputKey"]: output["OutputValue"] for output in outputs}


def report(outputs: dict[str, str], region: str) -> str:
    return "\n".join([
        f"API URL     {outputs['EndpointURL']}",
        f"API key     aws apigateway get-api-key --region {region} --include-value --api-key {outputs['ApiKeyId']}"
        " --query value --output text",
        f"table       {outputs['TransactionsTableName']}",
        f"dashboard   {outputs['DashboardName']}; alarms notify {outputs['AlarmTopicArn']}",
    ])


@dataclass(frozen=True)
class Options:
    stage: Stage
    model_dir: Path
    bucket: str
    region: str
    endpoint_args: list[str]
    skip_endpoint: bool
    poll_seconds: float


def deploy(options: Options, s3: Any, cfn: Any, run: Runner = run_command) -> dict[str, str]:
    """The whole chain, in order; returns the stack's outputs."""
    stage = options.stage
    if not options.skip_endpoint:
        run(endpoint_command(stage, options.model_dir, options.bucket, options.region, options.endpoint_args),
            REPO_ROOT, None)
    with tempfile.TemporaryDirectory(prefix="chalice-package-") as out:
        template = package_api(stage, Path(out) / "package", options.region, run)
        url = upload_package(s3, template.parent, options.bucket, options.region, stage)
    change_set = f"{stage.stack_name}-{url.rsplit('/', 1)[1].split('.')[0]}"  # named by the package digest
    return deploy_stack(cfn, stage.stack_name, url, stage.parameters(options.bucket), change_set,
                        options.poll_seconds)


def planned_calls(options: Options) -> list[tuple[str, Any]]:
    """What `deploy` does after the endpoint step, with the exact requests it can know before packaging."""
    stage, bucket = options.stage, options.bucket
    key = f"{PACKAGE_PREFIX}/{stage.name}/<sha256 of deployment.zip>"
    change_set = f"{stage.stack_name}-<sha256 of deployment.zip>"
    url = template_url(bucket, options.region, f"{key}.template.json")
    return [
        ("chalice package, in a clean copy of chalice_app/ with PIP_NO_DEPS=1",
         shlex.join(package_command(stage, Path("<tmp>/package")))),
        ("s3.upload_file", {"Filename": "deployment.zip", "Bucket": bucket, "Key": f"{key}.zip"}),
        ("s3.put_object: sam.yaml as JSON, CodeUri on that key", {"Bucket": bucket, "Key": f"{key}.template.json"}),
        ("cloudformation.describe_stacks", {"StackName": stage.stack_name}),
        ("cloudformation.create_change_set (ChangeSetType UPDATE if the stack exists)",
         change_set_request(stage.stack_name, url, stage.parameters(bucket), False, change_set)),
        ("cloudformation.describe_change_set until CREATE_COMPLETE, then execute_change_set",
         {"StackName": stage.stack_name, "ChangeSetName": change_set}),
        ("cloudformation.describe_stacks until CREATE_COMPLETE or UPDATE_COMPLETE; print the outputs",
         {"StackName": stage.stack_name}),
    ]


def dry_run(options: Options, run: Runner = run_command) -> None:
    """Print the chain; the endpoint step runs with `--dry-run` and prints its own calls."""
    if not options.skip_endpoint:
        command = endpoint_command(options.stage, options.model_dir, options.bucket, options.region,
                                   [*options.endpoint_args, "--dry-run"])
        print(f"# endpoint: {shlex.join(command[:-1])}", flush=True)
        run(command, REPO_ROOT, None)
    for title, detail in planned_calls(options):
        print(f"# {title}", detail if isinstance(detail, str) else json.dumps(detail, indent=2), sep="\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, help="a Chalice stage with AWS resources: dev or prod")
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "artifacts" / "model")
    parser.add_argument("--bucket", default=env.get("SAGEMAKER_BUCKET"),
                        help="for the model artifact, Lambda zip and template (default: $SAGEMAKER_BUCKET)")
    parser.add_argument("--region", default=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--endpoint-args", default="", help='passed to model.deploy, e.g. "--memory 3072"')
    parser.add_argument("--skip-endpoint", action="store_true", help="keep the endpoint as it is")
    parser.add_argument("--poll-seconds", type=float, default=10)
    parser.add_argument("--dry-run", action="store_true", help="print every command and AWS call instead")
    return parser.parse_args(argv)


def options_from_args(args: argparse.Namespace) -> Options:
    if not args.region:
        raise DeployError("pass --region or set AWS_REGION")
    if not args.bucket:
        raise DeployError("pass --bucket or set SAGEMAKER_BUCKET")
    return Options(Stage.load(args.stage), args.model_dir, args.bucket, args.region, shlex.split(args.endpoint_args),
                   args.skip_endpoint, args.poll_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        options = options_from_args(args)
        if args.dry_run:
            dry_run(options)
            return 0
        session = boto3.Session(region_name=options.region)
        outputs = deploy(options, session.client("s3"), session.client("cloudformation"))
    except DeployError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"deploy: AWS refused: {exc}", file=sys.stderr)
        return 1
    print(report(outputs, options.region))
    return 0


if __name__ == "__main__":
    sys.exit(main())
