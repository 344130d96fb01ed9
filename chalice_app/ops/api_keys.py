"""Per-client API keys of a deployed stage: each client gets its own key and usage plan.

    python -m chalice_app.ops.api_keys --stage dev create acme [--operator | --reviewer] | list | revoke acme

One key per client, so its traffic and feedback carry its key id and it can be revoked alone
(docs/local-stack.md). Operators read every client's transactions; reviewers' feedback trains models (as
operators' does); a role is a list of key ids in the stage's variables, live at its next deployment.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from chalice_app.ops.aws_stage import DeployError
from chalice_app.ops.chalice_deploy import deployed_rest_api
from chalice_app.ops.exit_codes import exit_code
from devkit.stages import (
    CHALICE_DIR,
    CONFIG_FILE,
    OPERATORS,
    REVIEWERS,
    set_stage_variable,
    stage_config,
    stage_environment,
)

CLIENT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
ROLES = {"operator": OPERATORS, "reviewer": REVIEWERS}  # role -> the stage variable listing its key ids


class ApiKeyCommandError(RuntimeError):
    """The command cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class ApiStage:
    rest_api_id: str
    stage_name: str


@dataclass(frozen=True)
class Limits:
    rate: float = 10.0  # requests per second, steady
    burst: int = 20
    quota_per_day: int = 50_000


def deployed_api(stage: str, chalice_dir: Path = CHALICE_DIR) -> ApiStage:
    """The REST API and API Gateway stage `chalice deploy` created for this Chalice stage."""
    try:
        rest_api_id, _ = deployed_rest_api(stage, chalice_dir / ".chalice" / "deployed")
    except DeployError as exc:
        raise ApiKeyCommandError(f"{exc}; deploy the stage first (make deploy STAGE={stage})") from exc
    stage_section = stage_config(stage, chalice_dir / ".chalice" / "config.json")
    return ApiStage(rest_api_id, stage_section.get("api_gateway_stage", "api"))


def key_name(stage: str, client: str) -> str:
    if not CLIENT_NAME.fullmatch(client):
        raise ApiKeyCommandError(f"client name {client[:80]!r} must be 1-64 letters, digits, '-' or '_'")
    return f"{json.loads(CONFIG_FILE.read_text())['app_name']}-{stage}-{client}"


def _keys(apigateway: Any, prefix: str) -> Iterator[dict[str, Any]]:
    for page in apigateway.get_paginator("get_api_keys").paginate(nameQuery=prefix, includeValues=False):
        yield from (key for key in page["items"] if key["name"].startswith(prefix))


def _key_named(apigateway: Any, name: str) -> dict[str, Any] | None:
    return next((key for key in _keys(apigateway, name) if key["name"] == name), None)


def create(apigateway: Any, api: ApiStage, stage: str, client: str, limits: Limits) -> dict[str, str]:
    """A new key and its own usage plan on the stage; returns its id and value (shown once)."""
    name = key_name(stage, client)
    if _key_named(apigateway, name) is not None:
        raise ApiKeyCommandError(f"client {client!r} already has a key on stage {stage!r} ({name}); revoke it first")
    key = apigateway.create_api_key(name=name, enabled=True, tags={"stage": stage, "client": client})
    plan = apigateway.create_usage_plan(
        name=name, apiStages=[{"apiId": api.rest_api_id, "stage": api.stage_name}],
        throttle={"rateLimit": limits.rate, "burstLimit": limits.burst},
        quota={"limit": limits.quota_per_day, "period": "DAY"}, tags={"stage": stage, "client": client})
    apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    return {"client": client, "key_id": key["id"], "value": key["value"], "usage_plan_id": plan["id"]}


def listing(apigateway: Any, stage: str, config_file: Path = CONFIG_FILE) -> list[dict[str, Any]]:
    """The stage's client keys: name, id, enabled and whether the stage counts it as an operator, a reviewer."""
    prefix = key_name(stage, "x")[:-1]
    environment = stage_environment(stage, config_file)
    members = {role: set(environment.get(variable, "").split(",")) for role, variable in ROLES.items()}
    return [{"client": key["name"][len(prefix):], "key_id": key["id"], "enabled": key["enabled"],
             **{role: key["id"] in ids for role, ids in members.items()}} for key in _keys(apigateway, prefix)]


def revoke(apigateway: Any, stage: str, client: str) -> str:
    """Delete the client's usage plan and key: the key stops working at once. Returns the key id."""
    name = key_name(stage, client)
    key = _key_named(apigateway, name)
    if key is None:
        raise ApiKeyCommandError(f"client {client!r} has no key on stage {stage!r}")
    for plan in apigateway.get_usage_plans(keyId=key["id"])["items"]:
        apigateway.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])
        if plan["name"] == name:
            apigateway.update_usage_plan(usagePlanId=plan["id"], patchOperations=[
                {"op": "remove", "path": "/apiStages", "value": f"{stage_api(plan)}"}])
            apigateway.delete_usage_plan(usagePlanId=plan["id"])
    apigateway.delete_api_key(apiKey=key["id"])
    return key["id"]


def stage_api(plan: dict[str, Any]) -> str:
    """The `apiId:stage` a usage plan's first API stage is written as in a patch operation."""
    [api_stage] = plan["apiStages"]
    return f"{api_stage['apiId']}:{api_stage['stage']}"


def set_role(stage: str, key_id: str, role: str, member: bool, config_file: Path = CONFIG_FILE) -> None:
    """Add or remove the key id in the stage's list for the role (takes effect at the next deployment)."""
    variable = ROLES[role]
    current = [k for k in stage_environment(stage, config_file).get(variable, "").split(",") if k and k != key_id]
    set_stage_variable(stage, variable, ",".join([*current, key_id] if member else current) or None, config_file)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, help="a deployed Chalice stage (dev, prod)")
    commands = parser.add_subparsers(dest="command", required=True)
    create_parser = commands.add_parser("create", help="a new key with its own usage plan")
    create_parser.add_argument("client")
    create_parser.add_argument("--rate", type=float, default=Limits.rate, help="requests per second")
    create_parser.add_argument("--burst", type=int, default=Limits.burst)
    create_parser.add_argument("--quota", type=int, default=Limits.quota_per_day, help="requests per day")
    role = create_parser.add_mutually_exclusive_group()
    role.add_argument("--operator", action="store_const", dest="role", const="operator",
                      help="may read every client's transactions; its feedback trains models")
    role.add_argument("--reviewer", action="store_const", dest="role", const="reviewer",
                      help="its feedback trains models (make export-feedback); otherwise a client like any other")
    commands.add_parser("list", help="the stage's client keys")
    revoke_parser = commands.add_parser("revoke", help="delete a client's key and usage plan")
    revoke_parser.add_argument("client")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, apigateway: Any) -> None:
    """Create, list or revoke a client's key."""
    if args.command == "create":
        created = create(apigateway, deployed_api(args.stage), args.stage, args.client,
                         Limits(args.rate, args.burst, args.quota))
        if args.role:
            set_role(args.stage, created["key_id"], args.role, True)
        print(json.dumps(created, indent=2))
        print(f"Give {args.client} the value above; it is not shown again."
              + (f" Redeploy the stage for the {args.role} role to apply." if args.role else ""),
              file=sys.stderr)
    elif args.command == "list":
        print(json.dumps(listing(apigateway, args.stage), indent=2))
    else:
        key_id = revoke(apigateway, args.stage, args.client)
        for role in ROLES:
            set_role(args.stage, key_id, role, False)
        print(f"revoked {args.client}'s key {key_id} on stage {args.stage}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    apigateway = boto3.client("apigateway")
    return exit_code("api_keys", lambda: run(args, apigateway), (ApiKeyCommandError,))


if __name__ == "__main__":
    sys.exit(main())
