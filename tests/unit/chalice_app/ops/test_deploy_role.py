"""`make deploy-role` (chalice_app/ops/deploy_role.py, infra/deploy-role.yaml) on moto's server: the role deploy.yml
assumes admits a GitHub token only from this repository's job in the stage's environment on the stage's ref (dev:
main, prod: a v* tag), and reaches only the stage's own resources.

AWS compares two claims of GitHub's token, `aud` and `sub`, with the trust policy's StringEquals and StringLike
conditions; `admits` applies those two operators as IAM does (case-sensitive; `*` any run of characters, `?` one)
to the policy the stack created, and refuses any other operator rather than ignore it."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import boto3
import pytest

from chalice_app.ops import deploy_role, infra
from chalice_app.ops.deploy_role import Trust, main
from devkit.stages import function_name

ACCOUNT = "123456789012"  # moto's
REPOSITORY = "octo-org/news-classifier"
SAGEMAKER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerInference"
ISSUER = "token.actions.githubusercontent.com"
OPERATORS = {"StringEquals": lambda value, pattern: value == pattern,
             "StringLike": lambda value, pattern: re.fullmatch(
                 "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), value) is not None}


def admits(trust_policy: dict[str, Any], claims: dict[str, str]) -> bool:
    """Whether a web identity token with these claims may assume the role (the policy has no Deny)."""
    for statement in trust_policy["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"}
        assert set(statement["Condition"]) <= set(OPERATORS), statement["Condition"]
        if all(OPERATORS[operator](claims.get(key.removeprefix(f"{ISSUER}:"), ""), pattern)
               for operator, conditions in statement["Condition"].items() for key, pattern in conditions.items()):
            return True
    return False


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")


def token(subject: str, audience: str = "sts.amazonaws.com") -> dict[str, str]:
    return {"aud": audience, "sub": subject}


def deployed(moto_url: str, stage: str, trust: Trust) -> dict[str, Any]:
    """The stage's role as its stack created it: {"trust": ..., "permissions": ..., "outputs": ...}."""
    session = boto3.Session(region_name="us-east-1")
    cfn, iam = (session.client(name, endpoint_url=moto_url) for name in ("cloudformation", "iam"))
    outputs = deploy_role.deploy(cfn, stage, trust, poll_seconds=0.1)
    name = f"{function_name(stage)}-github-deploy"
    (policy_name,) = iam.list_role_policies(RoleName=name)["PolicyNames"]
    permissions = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
    if not isinstance(permissions, dict):  # moto's CloudFormation keeps an inline policy as its dict's repr
        permissions = ast.literal_eval(permissions)
    # and leaves an AWS::NoValue list item (the optional model bucket's statement) as None
    permissions["Statement"] = [statement for statement in permissions["Statement"] if statement is not None]
    return {"trust": iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"], "permissions": permissions,
            "outputs": outputs}


@pytest.fixture
def roles(moto_url: str, aws_credentials: None) -> dict[str, dict[str, Any]]:
    """Both stages' roles, trusted for REPOSITORY."""
    return {stage: deployed(moto_url, stage, Trust(REPOSITORY, SAGEMAKER_ROLE)) for stage in deploy_role.STAGES}


def test_dev_is_deployed_only_by_this_repositorys_dev_environment_on_main(roles: dict[str, Any]) -> None:
    trust = roles["dev"]["trust"]
    assert admits(trust, token(f"repo:{REPOSITORY}:environment:dev:ref:refs/heads/main"))
    for subject in (f"repo:{REPOSITORY}:environment:dev:ref:refs/heads/feature",  # another branch
                    f"repo:{REPOSITORY}:environment:dev:ref:refs/heads/main-2",
                    f"repo:{REPOSITORY}:environment:dev:ref:refs/tags/v1.0.0",
                    f"repo:{REPOSITORY}:environment:dev:ref:refs/pull/7/merge",  # a pull request
                    f"repo:{REPOSITORY}:environment:prod:ref:refs/heads/main",  # the other environment
                    f"repo:{REPOSITORY}:ref:refs/heads/main",  # a job without the environment
                    f"repo:{REPOSITORY}:environment:dev",  # the default subject: the template is not set
                    f"repo:{REPOSITORY}:pull_request",
                    f"repo:{REPOSITORY}-fork:environment:dev:ref:refs/heads/main",  # another repository
                    "repo:octo-org/other:environment:dev:ref:refs/heads/main"):
        assert not admits(trust, token(subject)), subject
    assert not admits(trust, token(f"repo:{REPOSITORY}:environment:dev:ref:refs/heads/main", "https://github.com"))


def test_prod_is_deployed_only_by_this_repositorys_prod_environment_on_a_version_tag(roles: dict[str, Any]) -> None:
    trust = roles["prod"]["trust"]
    for tag in ("v1.0.0", "v2.3.1-rc1"):
        assert admits(trust, token(f"repo:{REPOSITORY}:environment:prod:ref:refs/tags/{tag}"))
    for subject in (f"repo:{REPOSITORY}:environment:prod:ref:refs/heads/main",
                    f"repo:{REPOSITORY}:environment:prod:ref:refs/tags/release-1",
                    f"repo:{REPOSITORY}:environment:prod:ref:refs/heads/v1.0.0",  # a branch named like a tag
                    f"repo:{REPOSITORY}:environment:dev:ref:refs/tags/v1.0.0",
                    f"repo:{REPOSITORY}:ref:refs/tags/v1.0.0",
                    f"repo:{REPOSITORY}:environment:prod",
                    "repo:octo-org/other:environment:prod:ref:refs/tags/v1.0.0"):
        assert not admits(trust, token(subject)), subject
    assert roles["prod"]["outputs"]["Subject"] == f"repo:{REPOSITORY}:environment:prod:ref:refs/tags/v*"


def resources(statement: dict[str, Any]) -> list[str]:
    found = statement["Resource"]
    return [found] if isinstance(found, str) else found


def test_each_role_reaches_only_its_own_stages_resources(roles: dict[str, Any]) -> None:
    for stage, other in (("dev", "prod"), ("prod", "dev")):
        statements = roles[stage]["permissions"]["Statement"]
        named = [arn for statement in statements for arn in resources(statement) if arn != "*"]
        assert named and not [arn for arn in named if f"-{other}" in arn]
        assert all(f"-{stage}" in arn or ":apigateway:" in arn or arn == SAGEMAKER_ROLE for arn in named), named
        # what `*` allows: listing and the registry's login, nothing that changes a resource
        anywhere = {action for s in statements if s["Resource"] == "*" for action in
                    ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
        assert anywhere == {"logs:DescribeLogGroups", "cloudwatch:DescribeAlarms", "sagemaker:ListModels",
                            "sagemaker:ListEndpointConfigs", "sagemaker:ListEndpoints", "ecr:GetAuthorizationToken"}
        (never,) = [s for s in statements if s["Effect"] == "Deny"]
        table = infra.parameters(stage)["TableName"]
        assert never["Action"] == "dynamodb:DeleteTable" and resources(never) == [
            f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{table}*"]
        (passed,) = [s for s in statements if resources(s) == [SAGEMAKER_ROLE]]
        assert passed["Action"] == "iam:PassRole" and \
            passed["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_a_separate_model_bucket_is_only_read(moto_url: str, aws_credentials: None) -> None:
    permissions = deployed(moto_url, "prod", Trust(REPOSITORY, SAGEMAKER_ROLE, model_bucket="news-model-registry"))[
        "permissions"]
    (read,) = [s for s in permissions["Statement"] if any("news-model-registry" in arn for arn in resources(s))]
    assert read["Action"] == ["s3:GetObject", "s3:ListBucket"]
    assert resources(read) == ["arn:aws:s3:::news-model-registry", "arn:aws:s3:::news-model-registry/*"]


def test_the_dry_run_prints_the_change_set_without_credentials(no_credentials: None,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stage", "prod", "--repository", REPOSITORY, "--sagemaker-role-arn", SAGEMAKER_ROLE,
                 "--create-oidc-provider", "--dry-run"]) == 0
    request = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert request["StackName"] == "news-classifier-api-prod-deploy-role"
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in request["Parameters"]}
    assert parameters | {"ArtifactBucket": "?"} == {
        "Stage": "prod", "GitHubRepository": REPOSITORY, "CreateOidcProvider": "true",
        "FunctionName": "news-classifier-api-prod", "EndpointName": "news-classifier-prod",
        "TableName": "news-transactions-prod", "RepositoryName": infra.repository_name("prod"), "ArtifactBucket": "?",
        "ModelBucket": "", "SageMakerRoleArn": SAGEMAKER_ROLE}


@pytest.mark.parametrize(("argv", "message"), [
    (["--stage", "dev", "--repository", "octo-org", "--sagemaker-role-arn", SAGEMAKER_ROLE], "OWNER/REPO"),
    (["--stage", "dev", "--repository", REPOSITORY, "--sagemaker-role-arn", "SageMakerInference"], "an IAM role ARN"),
    (["--stage", "dev", "--sagemaker-role-arn", SAGEMAKER_ROLE], "pass --repository"),
])
def test_what_would_make_a_wrong_trust_is_refused(no_credentials: None, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], argv: list[str],
                                                 message: str) -> None:
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    assert main([*argv, "--dry-run"]) == 2
    assert message in capsys.readouterr().err
