"""`make infra STAGE=dev`, `make infra-delete STAGE=dev`: the stage's infra stack (infra/stack.yaml).

    python -m chalice_app.ops.infra deploy|delete --stage dev [--dry-run]

What `chalice deploy` does not create (table, key and usage plan, log groups, alarms, dashboard, ECR), through a
change set; deleting it keeps the table (docs/aws-deployment.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3

from chalice_app.chalicelib.config import SERVICE_NAME
from chalice_app.ops.cloudformation import (
    StackError,
    delete_stack,
    deploy_calls,
    deploy_stack,
    described_stack,
    outputs_of,
)
from chalice_app.ops.exit_codes import exit_code
from devkit.plan import Call, Step, as_comment, execute, show
from devkit.stages import (
    CHALICE_DIR,
    DRIFT_HANDLER,
    function_name,
    read_config,
    stage_config,
    stage_environment,
)

TEMPLATE = CHALICE_DIR / "infra" / "stack.yaml"
PARAMETERS_DIR = CHALICE_DIR / "infra"


class InfraError(RuntimeError):
    """The infra stack cannot be deployed as asked; the message says why."""


@dataclass(frozen=True)
class Clients:
    """The AWS clients of the ops plans: the infra stack's, and the deployment chain's."""

    cloudformation: Any
    apigateway: Any
    s3: Any  # the API's package on the CloudFormation path
    sts: Any  # the account deployed to, which the Lambda policies name

    @classmethod
    def create(cls, region: str) -> Clients:
        session = boto3.Session(region_name=region)
        return cls(*(session.client(name) for name in ("cloudformation", "apigateway", "s3", "sts")))


def stack_name(stage: str) -> str:
    return f"{function_name(stage)}-infra"


def repository_name(stage: str) -> str:
    """The serving image's ECR repository: named after the stage's endpoint."""
    return stage_environment(stage)["ENDPOINT_NAME"]


def parameters(stage: str) -> dict[str, str]:
    """The template's parameters: names from the stage's config, levels from infra/parameters-<stage>.json."""
    environment = stage_environment(stage)
    names = {"StageName": stage_config(stage).get("api_gateway_stage", "api"), "ApiName": read_config()["app_name"],
             "FunctionName": function_name(stage), "DriftFunctionName": function_name(stage, DRIFT_HANDLER),
             "TableName": environment["TABLE_NAME"], "EndpointName": environment["ENDPOINT_NAME"],
             "MetricsNamespace": environment["POWERTOOLS_METRICS_NAMESPACE"], "ServiceName": SERVICE_NAME,
             "RepositoryName": repository_name(stage)}
    levels_file = PARAMETERS_DIR / f"parameters-{stage}.json"
    levels = json.loads(levels_file.read_text()) if levels_file.is_file() else {}
    overlap = sorted(set(levels) & set(names))
    if overlap:
        raise InfraError(f"{levels_file}: {', '.join(overlap)} come from .chalice/config.json, not from here")
    return {**names, **{key: str(value) for key, value in levels.items()}}


def change_set_name(stage: str) -> str:
    """Named by the template and parameters: the same inputs make the same name."""
    digest = hashlib.sha256(TEMPLATE.read_bytes() + json.dumps(parameters(stage), sort_keys=True).encode())
    return f"{stack_name(stage)}-{digest.hexdigest()[:12]}"


def check_stage(stage: str) -> None:
    config = stage_config(stage)  # ValueError for an unknown stage
    if config.get("autogen_policy", True) or "iam_policy_file" not in config:
        raise InfraError(f"stage {stage!r} has no hand-written policy (autogen_policy, iam_policy_file): "
                         "it is not meant for AWS")


def deploy(cfn: Any, stage: str, poll_seconds: float = 10) -> dict[str, str]:
    """Create or update the stage's infra stack; its outputs."""
    check_stage(stage)
    return deploy_stack(cfn, stack_name(stage), {"TemplateBody": TEMPLATE.read_text()}, parameters(stage),
                        change_set_name(stage), poll_seconds)


def unbind_usage_plan(apigateway: Any, plan_id: str) -> list[str]:
    """Remove every REST API stage from the usage plan (so that it can be deleted); the `api:stage` removed."""
    stages = [f"{s['apiId']}:{s['stage']}" for s in apigateway.get_usage_plan(usagePlanId=plan_id).get("apiStages", [])]
    if stages:
        apigateway.update_usage_plan(usagePlanId=plan_id, patchOperations=[
            {"op": "remove", "path": "/apiStages", "value": value} for value in stages])
    return stages


def delete(cfn: Any, apigateway: Any, stage: str, poll_seconds: float = 10) -> bool:
    """Unbind the usage plan, then delete the stack (the table is retained); False when there was none."""
    check_stage(stage)
    name = stack_name(stage)
    stack = described_stack(cfn, name)
    if stack is None:
        return False
    plan = outputs_of(stack).get("UsagePlanId")
    if plan:
        unbind_usage_plan(apigateway, plan)
    delete_stack(cfn, name, poll_seconds)
    return True


def deploy_step(stage: str, poll_seconds: float = 10) -> Step[Clients]:
    """`deploy` as a step (the template's text abbreviated); its result is the stack's outputs."""
    shown = {"TemplateBody": f"<{TEMPLATE.relative_to(CHALICE_DIR.parent)}>"}
    return Step("infra", deploy_calls(stack_name(stage), shown, parameters(stage), change_set_name(stage)),
                lambda clients, _: deploy(clients.cloudformation, stage, poll_seconds),
                title=f"infra: python -m chalice_app.ops.infra deploy --stage {stage}")


def delete_step(stage: str, poll_seconds: float = 10) -> Step[Clients]:
    """`delete` as a step; its result says whether there was a stack."""
    name, plan = stack_name(stage), {"usagePlanId": "<UsagePlanId output>"}
    unbind = [{"op": "remove", "path": "/apiStages", "value": "<rest_api_id>:<stage>"}]
    return Step("infra", [
        Call("cloudformation", "describe_stacks", {"StackName": name}, "(does it exist? its UsagePlanId output)"),
        Call("apigateway", "get_usage_plan", plan),
        Call("apigateway", "update_usage_plan", {**plan, "patchOperations": unbind}, "removing every /apiStages entry"),
        Call("cloudformation", "delete_stack", {"StackName": name}),
        Call("cloudformation", "describe_stacks", {"StackName": name}, "until DELETE_COMPLETE (the table is retained)"),
    ], lambda clients, _: delete(clients.cloudformation, clients.apigateway, stage, poll_seconds))


def report(stage: str, outputs: dict[str, str], region: str) -> str:
    return "\n".join([
        f"infra stack {stack_name(stage)} ({region})",
        f"table       {outputs['TransactionsTableName']} (kept when the stack is deleted)",
        f"API key     {outputs['ApiKeyId']}, usage plan {outputs['UsagePlanId']} (bound to the API by make deploy)",
        f"image repo  {outputs['RepositoryUri']}",
        f"dashboard   {outputs['DashboardName']}; alarms notify {outputs['AlarmTopicArn']}",
    ])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["deploy", "delete"])
    parser.add_argument("--stage", required=True, help="a Chalice stage with AWS resources: dev or prod")
    parser.add_argument("--region", default=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--poll-seconds", type=float, default=10)
    parser.add_argument("--dry-run", action="store_true", help="print every AWS call instead")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Deploy or delete the stage's infra stack, or print the call that would."""
    check_stage(args.stage)
    step = (deploy_step if args.action == "deploy" else delete_step)(args.stage, args.poll_seconds)
    if args.dry_run:
        show([step], as_comment)
        return
    if not args.region:
        raise InfraError("pass --region or set AWS_REGION")
    done = execute([step], Clients.create(args.region))[step.name]
    if args.action == "deploy":
        print(report(args.stage, done, args.region))
    else:
        print(f"{stack_name(args.stage)}: {'deleted' if done else 'no such stack'}; the table, if any, stays")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return exit_code("infra", lambda: run(args), (InfraError, StackError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
