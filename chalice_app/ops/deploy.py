"""`make deploy STAGE=dev`: the whole chain that ships an AWS stage, ending with a smoke test.

    python -m chalice_app.ops.deploy --stage dev --model-dir artifacts/model [--dry-run] [--via cloudformation]

Infra stack, endpoint, `chalice deploy`, usage-plan binding, smoke test: each step needs what the one before made
(docs/aws-deployment.md). `--skip-endpoint` keeps the endpoint (`canary`); `--dry-run` needs no credentials.
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
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError
from chalicelib.config import exposure_problems, settings_problems

from chalice_app.ops import infra
from chalice_app.ops.stacks import StackError, change_set_request, deploy_stack
from chalice_app.ops.stages import (
    CHALICE_DIR,
    CONFIG_FILE,
    DEPLOYED_DIR,
    baseline_location,
    function_name,
    stage_environment,
)

REPO_ROOT = CHALICE_DIR.parent
CHALICE_BIN = Path(sys.executable).with_name("chalice")
MERGE_TEMPLATE = Path("infra") / "function-names.yaml"
PACKAGE_PREFIX = "news-classifier/api"
SMOKE_HEADLINE = "Stocks rally as the central bank holds interest rates"
SMOKE_TIMEOUT_S = 120.0  # API Gateway takes a little while to enforce a freshly bound usage plan
VIA = ("chalice", "cloudformation")
Runner = Callable[[Sequence[str], Path, dict[str, str] | None], None]
Fetch = Callable[[str, bytes | None, dict[str, str]], tuple[int, Any]]


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
        """An AWS stage: one with a hand-written policy and settings the API accepts (a broken one would fail
        requests, or leave them unrecorded, after deploying)."""
        try:
            environment = stage_environment(name)
            infra.check_stage(name)
        except (ValueError, infra.InfraError) as exc:
            raise DeployError(str(exc)) from exc
        problems = settings_problems(environment)
        if problems:
            raise DeployError(f"stage {name!r} in {CONFIG_FILE}: the API would refuse {'; '.join(problems)}")
        exposed = exposure_problems(environment)
        if exposed:
            raise DeployError(f"stage {name!r} in {CONFIG_FILE} would be open on AWS: {'; '.join(exposed)}")
        config = json.loads(CONFIG_FILE.read_text())["stages"][name]
        return cls(name, config.get("api_gateway_stage", "api"), environment)

    @property
    def stack_name(self) -> str:
        """The API's own stack on the CloudFormation path."""
        return function_name(self.name)

    @property
    def artifacts(self) -> tuple[str, str]:
        """(bucket, prefix) of the model versions: where the drift job reads their baselines."""
        try:
            return baseline_location(self.name)
        except ValueError as exc:
            raise DeployError(str(exc)) from exc


def run_command(command: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    if subprocess.run(list(command), cwd=cwd, env=env).returncode != 0:
        raise DeployError(f"`{shlex.join(command)}` failed (in {cwd})")


def endpoint_command(stage: Stage, model_dir: Path, region: str, extra: Sequence[str]) -> list[str]:
    bucket, prefix = stage.artifacts
    return [sys.executable, "-m", "model.tools.deploy", "deploy", "--model-dir", str(model_dir.resolve()),
            "--endpoint", stage.environment["ENDPOINT_NAME"], "--bucket", bucket, "--prefix", prefix,
            "--region", region, *extra]


def endpoint_environment(repository_uri: str) -> dict[str, str]:
    """model.tools.deploy reads the serving image's repository from ECR_REPOSITORY."""
    return {**os.environ, "ECR_REPOSITORY": repository_uri}


def chalice_deploy_command(stage: Stage) -> list[str]:
    return [str(CHALICE_BIN), "deploy", "--stage", stage.name]


def chalice_environment(region: str) -> dict[str, str]:
    """PIP_NO_DEPS: requirements.txt lists the whole closure minus what the Lambda runtime has (boto3, botocore)."""
    return {**os.environ, "PIP_NO_DEPS": "1", "AWS_DEFAULT_REGION": region}


def clear_package_cache(project: Path) -> None:
    """Chalice reuses a zip from .chalice/deployments keyed without pip's options: one built with botocore would
    be shipped again."""
    shutil.rmtree(project / ".chalice" / "deployments", ignore_errors=True)


def deploy_with_chalice(stage: Stage, region: str, run: Runner, project: Path = CHALICE_DIR) -> tuple[str, str]:
    """`chalice deploy` in the project; the REST API's id and URL from .chalice/deployed/<stage>.json."""
    clear_package_cache(project)
    run(chalice_deploy_command(stage), project, chalice_environment(region))
    return deployed_rest_api(stage.name, project / ".chalice" / "deployed")


def deployed_rest_api(stage: str, deployed_dir: Path = DEPLOYED_DIR) -> tuple[str, str]:
    path = deployed_dir / f"{stage}.json"
    try:
        resources = json.loads(path.read_text())["resources"]
        (api,) = [r for r in resources if r.get("resource_type") == "rest_api"]
        return api["rest_api_id"], api["rest_api_url"]
    except (OSError, ValueError, KeyError) as exc:
        raise DeployError(f"{path}: no REST API recorded by chalice deploy ({exc})") from exc


def package_command(stage: Stage, out_dir: Path) -> list[str]:
    return [str(CHALICE_BIN), "package", "--stage", stage.name, "--merge-template", str(MERGE_TEMPLATE),
            str(out_dir)]


def package_api(stage: Stage, out_dir: Path, region: str, run: Runner = run_command) -> Path:
    """`chalice package` from a clean copy of the project; returns the merged template (sam.yaml)."""
    with tempfile.TemporaryDirectory(prefix="chalice-build-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(CHALICE_DIR, project, ignore=shutil.ignore_patterns(
            "deployments", "deployed", "venv", "__pycache__", "ops", "local", "reports"))
        run(package_command(stage, out_dir.resolve()), project, chalice_environment(region))
    return out_dir / "sam.yaml"


def template_url(bucket: str, region: str, key: str) -> str:
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def upload_package(s3: Any, package_dir: Path, bucket: str, region: str, stage: Stage) -> str:
    """Upload the zip under its content digest, point every function's CodeUri at it, upload the template;
    return its URL."""
    archive = package_dir / "deployment.zip"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    code_key = f"{PACKAGE_PREFIX}/{stage.name}/{digest}.zip"
    s3.upload_file(str(archive), bucket, code_key)
    template = yaml.safe_load((package_dir / "sam.yaml").read_text())
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": code_key}
    template_key = f"{PACKAGE_PREFIX}/{stage.name}/{digest}.template.json"
    s3.put_object(Bucket=bucket, Key=template_key, Body=json.dumps(template).encode())
    return template_url(bucket, region, template_key)


def deploy_with_cloudformation(stage: Stage, region: str, s3: Any, cfn: Any, run: Runner,
                               poll_seconds: float) -> tuple[str, str]:
    """`chalice package`, uploads, the API stack's change set; the REST API's id and URL from its outputs."""
    bucket, _ = stage.artifacts
    with tempfile.TemporaryDirectory(prefix="chalice-package-") as out:
        template = package_api(stage, Path(out) / "package", region, run)
        url = upload_package(s3, template.parent, bucket, region, stage)
    change_set = f"{stage.stack_name}-{url.rsplit('/', 1)[1].split('.')[0]}"  # named by the package digest
    outputs = deploy_stack(cfn, stage.stack_name, {"TemplateURL": url}, {"FunctionName": function_name(stage.name)},
                           change_set, poll_seconds)
    return outputs["RestAPIId"], outputs["EndpointURL"]


def bind_usage_plan(apigateway: Any, plan_id: str, rest_api_id: str, api_stage: str) -> list[dict[str, str]]:
    """Add the REST API stage to the usage plan (once), removing stages of REST APIs that are gone."""
    wanted = f"{rest_api_id}:{api_stage}"
    bound = [f"{s['apiId']}:{s['stage']}" for s in apigateway.get_usage_plan(usagePlanId=plan_id).get("apiStages", [])]
    operations = [{"op": "remove", "path": "/apiStages", "value": value} for value in bound
                  if value != wanted and not _rest_api_exists(apigateway, value.split(":")[0])]
    if wanted not in bound:
        operations.append({"op": "add", "path": "/apiStages", "value": wanted})
    if operations:
        apigateway.update_usage_plan(usagePlanId=plan_id, patchOperations=operations)
    return operations


def _rest_api_exists(apigateway: Any, rest_api_id: str) -> bool:
    try:
        apigateway.get_rest_api(restApiId=rest_api_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NotFoundException":
            return False
        raise
    return True


def fetch_json(url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except ValueError:
            return error.code, None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 0, str(exc)


def smoke_test(url: str, key: str, fetch: Fetch = fetch_json, timeout_s: float = SMOKE_TIMEOUT_S,
               sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """GET /health, then one POST /classify with the key; retried until `timeout_s` (a fresh deployment, a fresh
    binding). Returns the classification."""
    base = url.rstrip("/")
    deadline = time.monotonic() + timeout_s
    checks = [("GET /health", f"{base}/health", None, {}),
              ("POST /classify", f"{base}/classify", json.dumps({"headline": SMOKE_HEADLINE}).encode(),
               {"Content-Type": "application/json", "x-api-key": key})]
    answer: Any = None
    for name, target, body, headers in checks:
        delay = 2.0
        while True:
            status, answer = fetch(target, body, headers)
            if status == 200:
                break
            if time.monotonic() + delay > deadline:
                raise DeployError(f"smoke test: {name} answered {status or 'nothing'}: {answer}")
            sleep(delay)
            delay = min(delay * 2, 15.0)
    if not isinstance(answer, dict) or "label" not in answer:
        raise DeployError(f"smoke test: POST /classify answered without a label: {answer}")
    return answer


# $context variables of API Gateway's access log: who (the key id, never the key), what, and how it ended.
ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId", "apiKeyId": "$context.identity.apiKeyId", "time": "$context.requestTime",
    "method": "$context.httpMethod", "path": "$context.resourcePath", "status": "$context.status",
    "latencyMs": "$context.responseLatency", "error": "$context.error.message"}, separators=(",", ":"))


def stage_settings(outputs: dict[str, str]) -> list[dict[str, str]]:
    """The stage's throttle for every method, keyed or not, and its access log (the infra stack's log group)."""
    return [
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(outputs["StageRateLimit"])},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(outputs["StageBurstLimit"])},
        {"op": "replace", "path": "/accessLogSettings/destinationArn",
         "value": outputs["ApiAccessLogGroupArn"].removesuffix(":*")},
        {"op": "replace", "path": "/accessLogSettings/format", "value": ACCESS_LOG_FORMAT},
    ]


def protect_stage(apigateway: Any, rest_api_id: str, api_stage: str, outputs: dict[str, str]) -> None:
    """Anonymous traffic (/health, the console) cannot starve classification: the usage plans throttle each key,
    this throttles the whole stage; the access log makes every read attributable to a key id."""
    apigateway.update_stage(restApiId=rest_api_id, stageName=api_stage, patchOperations=stage_settings(outputs))


def report(url: str, stage: Stage, outputs: dict[str, str], region: str, answer: dict[str, Any]) -> str:
    return "\n".join([
        f"API URL     {url}",
        f"API key     aws apigateway get-api-key --region {region} --include-value --api-key {outputs['ApiKeyId']}"
        " --query value --output text",
        f"smoke test  /health 200; /classify 200: {answer.get('label')} (model {answer.get('model_version')})",
        f"table       {outputs['TransactionsTableName']}; serving image repository {outputs['RepositoryUri']}",
        f"dashboard   {outputs['DashboardName']}; alarms notify {outputs['AlarmTopicArn']}",
    ])


@dataclass(frozen=True)
class Options:
    stage: Stage
    model_dir: Path
    region: str
    endpoint_args: list[str]
    skip_endpoint: bool = False
    via: str = "chalice"
    poll_seconds: float = 10
    project: Path = CHALICE_DIR  # where `chalice deploy` runs and records what it created


@dataclass(frozen=True)
class Clients:
    cloudformation: Any
    apigateway: Any
    s3: Any  # the CloudFormation path's uploads


def deploy(options: Options, clients: Clients, run: Runner = run_command, fetch: Fetch = fetch_json,
           smoke_timeout_s: float = SMOKE_TIMEOUT_S) -> str:
    """The whole chain, in order; returns the report to print."""
    stage = options.stage
    outputs = infra.deploy(clients.cloudformation, stage.name, options.poll_seconds)
    if not options.skip_endpoint:
        run(endpoint_command(stage, options.model_dir, options.region, options.endpoint_args), REPO_ROOT,
            endpoint_environment(outputs["RepositoryUri"]))
    if options.via == "chalice":
        rest_api_id, url = deploy_with_chalice(stage, options.region, run, options.project)
    else:
        rest_api_id, url = deploy_with_cloudformation(stage, options.region, clients.s3, clients.cloudformation, run,
                                                      options.poll_seconds)
    bind_usage_plan(clients.apigateway, outputs["UsagePlanId"], rest_api_id, stage.api_stage)
    protect_stage(clients.apigateway, rest_api_id, stage.api_stage, outputs)
    key = clients.apigateway.get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)["value"]
    answer = smoke_test(url, key, fetch, smoke_timeout_s)
    return report(url, stage, outputs, options.region, answer)


def planned_calls(options: Options) -> list[tuple[str, Any]]:
    """What `deploy` does around the endpoint step, with the requests it can know before running."""
    stage = options.stage
    api: list[tuple[str, Any]]
    if options.via == "chalice":
        api = [(f"chalice deploy, in {CHALICE_DIR.relative_to(REPO_ROOT)}/ with PIP_NO_DEPS=1 (its zip cache "
                "cleared); the REST API id and URL from .chalice/deployed/" f"{stage.name}.json",
                shlex.join(chalice_deploy_command(stage)))]
    else:
        bucket, _ = stage.artifacts
        key = f"{PACKAGE_PREFIX}/{stage.name}/<sha256 of deployment.zip>"
        change_set = f"{stage.stack_name}-<sha256 of deployment.zip>"
        url = template_url(bucket, options.region, f"{key}.template.json")
        api = [
            ("chalice package, in a clean copy of chalice_app/ with PIP_NO_DEPS=1",
             shlex.join(package_command(stage, Path("<tmp>/package")))),
            ("s3.upload_file", {"Filename": "deployment.zip", "Bucket": bucket, "Key": f"{key}.zip"}),
            ("s3.put_object: sam.yaml as JSON, every function's CodeUri on that key",
             {"Bucket": bucket, "Key": f"{key}.template.json"}),
            ("cloudformation.create_change_set (UPDATE if the stack exists), execute it, wait; RestAPIId and "
             "EndpointURL from its outputs", change_set_request(stage.stack_name, {"TemplateURL": url},
                                                                  {"FunctionName": function_name(stage.name)},
                                                                  False, change_set)),
        ]
    return [
        *api,
        ("apigateway.get_usage_plan, then update_usage_plan adding the REST API stage (and removing stages of "
         "REST APIs that are gone)", {"usagePlanId": "<UsagePlanId output>", "patchOperations": [
             {"op": "add", "path": "/apiStages", "value": f"<rest_api_id>:{stage.api_stage}"}]}),
        ("apigateway.update_stage: the stage's throttle and access log", {
            "restApiId": "<rest_api_id>", "stageName": stage.api_stage, "patchOperations": stage_settings({
                "StageRateLimit": "<StageRateLimit output>", "StageBurstLimit": "<StageBurstLimit output>",
                "ApiAccessLogGroupArn": "<ApiAccessLogGroupArn output>"})}),
        ("apigateway.get_api_key", {"apiKey": "<ApiKeyId output>", "includeValue": True}),
        ("smoke test: GET <url>/health, then POST <url>/classify with x-api-key, until both answer 200",
         {"headline": SMOKE_HEADLINE}),
        ("print the URL and `aws apigateway get-api-key --include-value --api-key <ApiKeyId>`", {}),
    ]


def dry_run(options: Options, run: Runner = run_command) -> None:
    """Print the chain in order; the endpoint step runs with `--dry-run` and prints its own calls."""
    stage = options.stage
    print(f"# infra: python -m chalice_app.ops.infra deploy --stage {stage.name}", flush=True)
    infra.print_plan(infra.planned_deploy(stage.name))
    if not options.skip_endpoint:
        command = endpoint_command(stage, options.model_dir, options.region, [*options.endpoint_args, "--dry-run"])
        print(f"# endpoint (ECR_REPOSITORY=<RepositoryUri output>): {shlex.join(command[:-1])}", flush=True)
        run(command, REPO_ROOT, endpoint_environment(infra.repository_name(stage.name)))
    infra.print_plan(planned_calls(options))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, help="a Chalice stage with AWS resources: dev or prod")
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "artifacts" / "model")
    parser.add_argument("--region", default=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--endpoint-args", default="", help='passed to model.tools.deploy, e.g. "--memory 3072"')
    parser.add_argument("--skip-endpoint", action="store_true", help="keep the endpoint as it is")
    parser.add_argument("--via", choices=VIA, default="chalice",
                        help="chalice deploy (default), or chalice package and a CloudFormation stack")
    parser.add_argument("--poll-seconds", type=float, default=10)
    parser.add_argument("--dry-run", action="store_true", help="print every command and AWS call instead")
    return parser.parse_args(argv)


def options_from_args(args: argparse.Namespace) -> Options:
    if not args.region:
        raise DeployError("pass --region or set AWS_REGION")
    return Options(Stage.load(args.stage), args.model_dir, args.region, shlex.split(args.endpoint_args),
                   args.skip_endpoint, args.via, args.poll_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        options = options_from_args(args)
        if args.dry_run:
            dry_run(options)
            return 0
        session = boto3.Session(region_name=options.region)
        clients = Clients(session.client("cloudformation"), session.client("apigateway"), session.client("s3"))
        print(deploy(options, clients))
    except (DeployError, StackError, infra.InfraError) as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"deploy: AWS refused: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
