"""`make deploy STAGE=dev`: the whole chain that ships an AWS stage, ending with a smoke test.

    python -m chalice_app.ops.deploy --stage dev --model-dir artifacts/model [--dry-run] [--via cloudformation]

Infra stack, endpoint, the Lambda policies (for the account and region deployed to), `chalice deploy`, usage-plan
binding, smoke tests (with the key: answered; without: refused): each step needs what the one before made
(docs/aws-deployment.md). One plan of steps (devkit/plan.py) is run, or printed by `--dry-run`, which needs no
credentials. `--skip-endpoint` keeps the endpoint (`canary`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalice_app.ops import infra
from chalice_app.ops.api_gateway import (
    SMOKE_TIMEOUT_S,
    Fetch,
    bind_usage_plan,
    fetch_json,
    keyless_calls,
    keyless_test,
    protect_stage,
    smoke_calls,
    smoke_test,
    stage_calls,
    usage_plan_calls,
)
from chalice_app.ops.aws_stage import DeployError, Stage
from chalice_app.ops.chalice_deploy import VIA, Runner, api_step, policies_step, run_command
from chalice_app.ops.cloudformation import StackError
from chalice_app.ops.exit_codes import exit_code
from chalice_app.ops.infra import Clients
from devkit.plan import Call, Step, as_comment, execute, show
from devkit.repo import REPO_ROOT
from devkit.stages import CHALICE_DIR


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


def endpoint_command(stage: Stage, model_dir: Path, region: str, extra: Sequence[str]) -> list[str]:
    bucket, prefix = stage.artifacts
    return [sys.executable, "-m", "model.tools.deploy_endpoint", "deploy", "--model-dir", str(model_dir.resolve()),
            "--endpoint", stage.environment["ENDPOINT_NAME"], "--bucket", bucket, "--prefix", prefix,
            "--region", region, *extra]


def endpoint_environment(repository_uri: str) -> dict[str, str]:
    """model.tools.deploy_endpoint reads the serving image's repository from ECR_REPOSITORY."""
    return {**os.environ, "ECR_REPOSITORY": repository_uri}


def endpoint_step(options: Options, run: Runner) -> Step[Clients]:
    """`python -m model.tools.deploy_endpoint deploy`, with the infra stack's image repository; a dry run runs its
    dry run."""
    stage, command = options.stage, endpoint_command(options.stage, options.model_dir, options.region,
                                                     options.endpoint_args)
    return Step("endpoint", [Call("model.tools.deploy_endpoint", "deploy", shlex.join(command),
                                  "with ECR_REPOSITORY=<RepositoryUri output>; its own dry run follows")],
                lambda _, done: run(command, REPO_ROOT, endpoint_environment(done["infra"]["RepositoryUri"])),
                title="endpoint",
                dry_run=lambda: run([*command, "--dry-run"], REPO_ROOT,
                                    endpoint_environment(infra.repository_name(stage.name))))


def takedown(options: Options) -> str:
    """The command that removes the API as it was deployed (the table and the infra stack stay)."""
    if options.via == "chalice":
        return f"`chalice delete --stage {options.stage.name}` in {options.project}"
    return f"`aws cloudformation delete-stack --region {options.region} --stack-name {options.stage.stack_name}`"


def report(url: str, stage: Stage, outputs: dict[str, str], region: str, answer: dict[str, Any],
           refused: dict[str, int]) -> str:
    return "\n".join([
        f"API URL     {url}",
        f"API key     aws apigateway get-api-key --region {region} --include-value --api-key {outputs['ApiKeyId']}"
        " --query value --output text",
        f"smoke test  /health 200; /classify 200: {answer.get('label')} (model {answer.get('model_version')})",
        f"no key      {', '.join(f'{request} {status}' for request, status in refused.items())} (refused)",
        f"table       {outputs['TransactionsTableName']}; serving image repository {outputs['RepositoryUri']}",
        f"dashboard   {outputs['DashboardName']}; alarms notify {outputs['AlarmTopicArn']}",
    ])


def chain_plan(options: Options, run: Runner = run_command, fetch: Fetch = fetch_json,
               smoke_timeout_s: float = SMOKE_TIMEOUT_S) -> list[Step[Clients]]:
    """The chain, in order. Each step reads what the ones before it made: the infra stack's outputs (`infra`), the
    REST API's id and URL (`api`), the key's value (`key`). It ends by asking the stage, without a key, for what
    only a key may have: the guard read the config, this checks the stage itself."""
    stage, api_stage = options.stage, options.stage.api_stage
    key = Call("apigateway", "get_api_key", {"apiKey": "<ApiKeyId output>", "includeValue": True})
    return [
        infra.deploy_step(stage.name, options.poll_seconds),
        *([] if options.skip_endpoint else [endpoint_step(options, run)]),
        policies_step(stage, options.region, options.project),
        api_step(stage, options.region, options.via, options.project, run, options.poll_seconds),
        Step("usage plan", usage_plan_calls(api_stage), lambda clients, done: bind_usage_plan(
            clients.apigateway, done["infra"]["UsagePlanId"], done["api"][0], api_stage)),
        Step("stage", stage_calls(api_stage),
             lambda clients, done: protect_stage(clients.apigateway, done["api"][0], api_stage, done["infra"])),
        Step("key", [key], lambda clients, done: clients.apigateway.get_api_key(
            apiKey=done["infra"]["ApiKeyId"], includeValue=True)["value"]),
        Step("smoke test", smoke_calls(smoke_timeout_s),
             lambda _, done: smoke_test(done["api"][1], done["key"], fetch, smoke_timeout_s), title="smoke test"),
        Step("keyless test", keyless_calls(),
             lambda _, done: keyless_test(done["api"][1], takedown(options), fetch, smoke_timeout_s),
             title="negative smoke test: without a key the data routes refuse (401/403), else the deployment fails"),
        Step("report", [], lambda _, done: report(done["api"][1], stage, done["infra"], options.region,
                                                  done["smoke test"], done["keyless test"]),
             title="print the URL and `aws apigateway get-api-key --include-value --api-key <ApiKeyId>`"),
    ]


def deploy(options: Options, clients: Clients, run: Runner = run_command, fetch: Fetch = fetch_json,
           smoke_timeout_s: float = SMOKE_TIMEOUT_S) -> str:
    """The whole chain, in order; returns the report to print."""
    return execute(chain_plan(options, run, fetch, smoke_timeout_s), clients)["report"]


def dry_run(options: Options, run: Runner = run_command) -> None:
    """Print the chain in order; the endpoint step runs with `--dry-run` and prints its own calls."""
    show(chain_plan(options, run), as_comment)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, help="a Chalice stage with AWS resources: dev or prod")
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "artifacts" / "model")
    parser.add_argument("--region", default=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--endpoint-args", default="",
                        help='passed to model.tools.deploy_endpoint, e.g. "--memory 3072"')
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
    return exit_code("deploy", lambda: run(args), (DeployError, StackError, infra.InfraError))


def run(args: argparse.Namespace) -> None:
    options = options_from_args(args)
    if args.dry_run:
        dry_run(options)
    else:
        print(deploy(options, Clients.create(options.region)))


if __name__ == "__main__":
    sys.exit(main())
