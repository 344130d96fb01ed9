"""`make deploy-role STAGE=dev GITHUB_REPOSITORY=OWNER/REPO`: the role GitHub Actions deploys a stage with.

    python -m chalice_app.ops.deploy_role --stage dev --repository OWNER/REPO --sagemaker-role-arn ARN
        [--model-bucket BUCKET] [--create-oidc-provider] [--dry-run]

infra/deploy-role.yaml through a change set, its names from .chalice/config.json as the infra stack's: a role that
only a job of that repository in the stage's GitHub environment, on the stage's ref (dev: main, prod: a v* tag),
can assume through GitHub's OIDC provider. Run once per stage by someone allowed to create IAM roles; the role's
ARN it prints is the environment's AWS_DEPLOY_ROLE_ARN (docs/aws-deployment.md, "Repository settings").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3

from chalice_app.ops import infra
from chalice_app.ops.cloudformation import StackError, change_set_request, deploy_stack
from chalice_app.ops.exit_codes import exit_code
from devkit.stages import CHALICE_DIR, baseline_location, function_name, stage_environment

TEMPLATE = CHALICE_DIR / "infra" / "deploy-role.yaml"
STAGES = ("dev", "prod")  # the environments of .github/workflows/deploy.yml
# OWNER/REPO, or OWNER@OWNER_ID/REPO@REPO_ID where GitHub's tokens carry immutable subject claims
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+(@[0-9]+)?/[A-Za-z0-9_.-]+(@[0-9]+)?$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")


class DeployRoleError(RuntimeError):
    """The deploy role cannot be deployed as asked; the message says why."""


@dataclass(frozen=True)
class Trust:
    """Who may assume the role and what it may reach beyond the stage's own names."""

    repository: str
    sagemaker_role_arn: str
    model_bucket: str = ""
    create_oidc_provider: bool = False

    def __post_init__(self) -> None:
        if not REPOSITORY.match(self.repository):
            raise DeployRoleError(f"--repository {self.repository!r}: OWNER/REPO as GitHub's token names it "
                                  "(OWNER@OWNER_ID/REPO@REPO_ID with immutable subject claims)")
        if not ROLE_ARN.match(self.sagemaker_role_arn):
            raise DeployRoleError(f"--sagemaker-role-arn {self.sagemaker_role_arn!r}: an IAM role ARN "
                                  "(arn:aws:iam::ACCOUNT:role/NAME), the role the endpoint runs as")


def stack_name(stage: str) -> str:
    return f"{function_name(stage)}-deploy-role"


def parameters(stage: str, trust: Trust) -> dict[str, str]:
    """The template's parameters: the stage's names as the infra stack and `make deploy` use them, and the trust."""
    if stage not in STAGES:
        raise DeployRoleError(f"stage {stage!r}: the deploy workflow deploys {' and '.join(STAGES)} only")
    infra.check_stage(stage)
    environment = stage_environment(stage)
    return {"Stage": stage, "GitHubRepository": trust.repository,
            "CreateOidcProvider": str(trust.create_oidc_provider).lower(), "FunctionName": function_name(stage),
            "EndpointName": environment["ENDPOINT_NAME"], "TableName": environment["TABLE_NAME"],
            "RepositoryName": infra.repository_name(stage), "ArtifactBucket": baseline_location(stage)[0],
            "ModelBucket": trust.model_bucket, "SageMakerRoleArn": trust.sagemaker_role_arn}


def change_set_name(stage: str, trust: Trust) -> str:
    """Named by the template and parameters: the same inputs make the same name."""
    digest = hashlib.sha256(TEMPLATE.read_bytes() + json.dumps(parameters(stage, trust), sort_keys=True).encode())
    return f"{stack_name(stage)}-{digest.hexdigest()[:12]}"


def deploy(cfn: Any, stage: str, trust: Trust, poll_seconds: float = 10) -> dict[str, str]:
    """Create or update the stage's deploy role; the stack's outputs (RoleArn, Subject)."""
    return deploy_stack(cfn, stack_name(stage), {"TemplateBody": TEMPLATE.read_text()}, parameters(stage, trust),
                        change_set_name(stage, trust), poll_seconds)


def planned_deploy(stage: str, trust: Trust) -> dict[str, Any]:
    """The change set `deploy` asks for (the template's text abbreviated)."""
    return change_set_request(stack_name(stage), {"TemplateBody": f"<{TEMPLATE.relative_to(CHALICE_DIR.parent)}>"},
                              parameters(stage, trust), False, change_set_name(stage, trust))


def report(stage: str, outputs: dict[str, str]) -> str:
    return "\n".join([
        f"deploy role of {stage}: {outputs['RoleArn']}",
        f"  set it as the variable AWS_DEPLOY_ROLE_ARN of the GitHub environment {stage!r}",
        f"  it admits only tokens whose subject is {outputs['Subject']}: the repository's OIDC subject template "
        "must include the ref (docs/aws-deployment.md, \"Repository settings\")",
    ])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, choices=STAGES)
    parser.add_argument("--repository", default=env.get("GITHUB_REPOSITORY"),
                        help="OWNER/REPO whose deploy workflow may assume the role (default: $GITHUB_REPOSITORY)")
    parser.add_argument("--sagemaker-role-arn", default=env.get("SAGEMAKER_ROLE_ARN"),
                        help="the role the endpoint runs as; the only role passed to SageMaker "
                             "(default: $SAGEMAKER_ROLE_ARN)")
    parser.add_argument("--model-bucket", default="", help="the bucket of MODEL_S3_URI, if not the artifact bucket")
    parser.add_argument("--create-oidc-provider", action="store_true",
                        help="also create the account's IAM OIDC provider for GitHub (once per account)")
    parser.add_argument("--region", default=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--poll-seconds", type=float, default=10)
    parser.add_argument("--dry-run", action="store_true", help="print the change set instead of creating it")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Deploy the stage's deploy role, or print the change set that would."""
    for flag, value in (("--repository (or GITHUB_REPOSITORY)", args.repository),
                        ("--sagemaker-role-arn (or SAGEMAKER_ROLE_ARN)", args.sagemaker_role_arn)):
        if not value:
            raise DeployRoleError(f"pass {flag}")
    trust = Trust(args.repository, args.sagemaker_role_arn, args.model_bucket, args.create_oidc_provider)
    if args.dry_run:
        print("# cloudformation.create_change_set (then execute it, as make infra does)",
              json.dumps(planned_deploy(args.stage, trust), indent=2), sep="\n")
        return
    if not args.region:
        raise DeployRoleError("pass --region or set AWS_REGION")
    cfn = boto3.Session(region_name=args.region).client("cloudformation")
    print(report(args.stage, deploy(cfn, args.stage, trust, args.poll_seconds)))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return exit_code("deploy-role", lambda: run(args), (DeployRoleError, infra.InfraError, StackError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
