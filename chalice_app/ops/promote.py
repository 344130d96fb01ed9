"""`make promote`: a version that passed the gate (`make retrain` registered it) takes a canary share of a stage.

    python -m chalice_app.ops.promote --stage dev --version VERSION [--canary-share 0.1] [--dry-run]
        [--registry DIR] [--deploy-args --region eu-west-1 --endpoint-args="--memory 3072" ...]

One plan (devkit/plan.py), run or printed by `--dry-run`: on dev and prod the version's own endpoint
`<ENDPOINT_NAME>-<version digest>` (model/tools/endpoint.py's plan), then the stage's MODEL_VARIANTS with the canary
share and the API redeployed (chalice_app/ops/canary.py's plan), then the registry's record of the promotion. Locally
the registry alone holds the stage's routing; `make local-canary` serves it (docs/ab-and-retraining.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import boto3

from chalice_app.chalicelib.config import ConfigError
from chalice_app.ops import deploy, infra
from chalice_app.ops.api_gateway import Fetch, fetch_json
from chalice_app.ops.aws_stage import DeployError
from chalice_app.ops.canary import CanaryError, canary_plan, redeploy_options, with_canary
from chalice_app.ops.chalice_deploy import Runner, run_command
from chalice_app.ops.cloudformation import StackError
from chalice_app.ops.exit_codes import exit_code
from devkit.aws_names import SAGEMAKER_NAME, SAGEMAKER_NAME_LIMIT
from devkit.plan import Call, Step, as_comment, execute, show
from devkit.stages import CONFIG_FILE, model_variants, stage_environment
from model.tools import deploy_endpoint as endpoint_tool
from model.tools import endpoint
from model.tools.image import ImageError, Registry
from model.tools.release import ReleaseError as EndpointError
from training_jobs.registry import DEFAULT_ROOT, ModelRegistry, Promotion, VersionRecord

C = TypeVar("C")
LOCAL_STAGE = "local"  # its routing lives in the registry, not in a deployment
MIN_ENDPOINT_SUFFIX = 4  # hex characters of the version's digest: enough to tell a stage's versions apart


class PromoteError(ValueError):
    """The promotion cannot go ahead as asked; the message says what to change."""


class PromotionClients(NamedTuple):
    """What promote's plan acts through: each part's own clients (model/tools/endpoint.py, chalice_app/ops/infra.py)
    and ECR for the serving image's steps."""

    endpoint: endpoint.SageMakerClients
    api: infra.Clients
    ecr: Any

    @classmethod
    def create(cls, region: str) -> PromotionClients:
        return cls(endpoint.SageMakerClients.create(region), infra.Clients.create(region),
                   boto3.Session(region_name=region).client("ecr"))


@dataclass(frozen=True)
class Target:
    """A registered version, what it replaces (the version it passed the gate against), and where it goes."""

    stage: str
    version: VersionRecord
    replaces: VersionRecord
    share: float
    registry: ModelRegistry
    config_file: Path = CONFIG_FILE


class Plan(NamedTuple):
    endpoint: str  # the version's own endpoint
    variants: dict[str, float]  # the stage's routing after the promotion
    steps: list[Step[Any]]


def version_endpoint(base: str, version: str) -> str:
    """The endpoint a promoted version gets: the stage's endpoint name plus the version's trailing digest, as long as
    model.tools.release's config name `<endpoint>-<model_version>-<digest>` leaves room for."""
    room = SAGEMAKER_NAME_LIMIT - len(f"{base}--{version}-123456")  # <base>-<suffix>-<version>-<config digest>
    name = f"{base}-{version.rsplit('-', 1)[-1][:room]}"
    if room < MIN_ENDPOINT_SUFFIX or not SAGEMAKER_NAME.match(name):
        raise PromoteError(f"no valid endpoint name for version {version!r} on endpoint {base!r}: SageMaker allows "
                           f"{SAGEMAKER_NAME_LIMIT} characters for <endpoint>-<version>-<digest>")
    return name


def through(steps: Sequence[Step[C]], part: Callable[[PromotionClients], C]) -> list[Step[Any]]:
    """Another plan's steps in promote's: each one is given its own part of promote's clients."""
    return [replace(step, run=lambda clients, done, run=step.run: run(part(clients), done)) for step in steps]


def endpoint_plan(options: deploy.Options, model_dir: Path, name: str, dry_run: bool) -> list[Step[Any]]:
    """`model.tools.deploy_endpoint deploy`'s plan for the version's endpoint, in the stage's artifact bucket and
    prefix (where its drift job reads baselines), with `--endpoint-args`. As that tool does, a run builds or pins the
    serving image here, first (the names carry its digest); a dry run gets the image's steps to print instead."""
    bucket, prefix = options.stage.artifacts
    args = endpoint_tool.parse_args(["deploy", "--model-dir", str(model_dir), "--endpoint", name, "--bucket", bucket,
                                     "--prefix", prefix, "--region", options.region, *options.endpoint_args,
                                     *(["--dry-run"] if dry_run else [])])
    release, key, image_steps = endpoint_tool.release_from_args(args)
    steps = endpoint.deploy_plan(release, model_dir, bucket, key, args.poll_seconds, args.timeout_seconds)
    return [*through(image_steps, lambda clients: Registry(clients.ecr)),
            *through(steps, lambda clients: clients.endpoint)]


def registry_step(target: Target, endpoints: Mapping[str, str], variants: Mapping[str, float]) -> Step[Any]:
    """Record the promotion (the stage's routing, the endpoints it added) and make the version current: last, once
    everything before it worked."""
    version = target.version.version
    call = Call("registry", "promote", {"registry": str(target.registry.file), "version": version,
                                        "replaces": target.replaces.version, "stage": target.stage,
                                        "endpoints": dict(endpoints), "variants": dict(variants)},
                f"then `current` is {version}")
    promotion = Promotion(target.version, target.replaces, target.stage, dict(endpoints), dict(variants))
    return Step("registry", [call], lambda _, __: target.registry.promote(promotion, dt.datetime.now(dt.UTC)),
                title="the registry")


def promote_plan(target: Target, options: deploy.Options | None, dry_run: bool = False, run: Runner = run_command,
                 fetch: Fetch = fetch_json) -> Plan:
    """The promotion's steps in order: a run executes them, a dry run prints them. `options` (`make deploy`'s, the
    endpoint skipped) for an AWS stage, None for the local one."""
    base = stage_environment(target.stage, target.config_file)["ENDPOINT_NAME"]
    name = version_endpoint(base, target.version.version)
    recorded = target.registry.stage_variants(target.stage)
    before = recorded if target.stage == LOCAL_STAGE and recorded else model_variants(target.stage, target.config_file)
    variants = with_canary(before, name, target.share)
    endpoints = {name: target.version.version, **({base: target.replaces.version} if recorded is None else {})}
    record = registry_step(target, endpoints, variants)
    if options is None:
        return Plan(name, variants, [record])
    routed = canary_plan(options, variants, target.config_file, run, fetch)
    return Plan(name, variants, [*endpoint_plan(options, target.version.path, name, dry_run),
                                 *through(routed, lambda clients: clients.api), record])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, help="Chalice stage: local, dev or prod")
    parser.add_argument("--version", required=True, help="a version `make retrain` registered (it passed the gate)")
    parser.add_argument("--canary-share", type=float, default=0.1,
                        help="its share of the stage's traffic, (0, 1] (default 0.1; 1 completes the rollout)")
    parser.add_argument("--registry", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--dry-run", action="store_true", help="print every step, call and command; change nothing")
    parser.add_argument("--deploy-args", nargs=argparse.REMAINDER, default=[],
                        help="chalice_app.ops.deploy's options for AWS stages, e.g. --region eu-west-1 "
                             "--endpoint-args='--memory 3072' --via cloudformation (last option)")
    return parser.parse_args(argv)


def target_from_args(args: argparse.Namespace) -> tuple[Target, deploy.Options | None]:
    """The registered version and, on an AWS stage, `make deploy`'s options; refused before any step runs."""
    registry = ModelRegistry(args.registry)
    version, replaces = registry.registered(args.version)
    if args.stage == LOCAL_STAGE and args.deploy_args:
        raise PromoteError(f"--deploy-args: the {LOCAL_STAGE} stage deploys nothing")
    options = None if args.stage == LOCAL_STAGE else redeploy_options(args.stage, args.deploy_args, version.path)
    return Target(args.stage, version, replaces, args.canary_share, registry), options


def summary(target: Target, plan: Plan, dry_run: bool) -> str:
    what = f"{target.version.version} on {target.stage}: endpoint {plan.endpoint}, MODEL_VARIANTS " \
           f"{json.dumps(plan.variants)}"
    if dry_run:
        return f"dry run: would promote {what}; nothing was changed"
    serve = "; `make local-canary` serves the split" if target.stage == LOCAL_STAGE else ""
    return f"promoted {what} (now current){serve}"


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    return exit_code("promote", lambda: run(args), (PromoteError, CanaryError, ConfigError, DeployError, EndpointError,
                                                    ImageError, StackError, infra.InfraError, FileNotFoundError,
                                                    ValueError))


def run(args: argparse.Namespace) -> None:
    target, options = target_from_args(args)
    plan = promote_plan(target, options, args.dry_run)
    if args.dry_run:
        show(plan.steps, as_comment)
    else:
        done = execute(plan.steps, options and PromotionClients.create(options.region))
        if "report" in done:  # the API's URL and key, as `make deploy` prints them
            print(done["report"])
    print(summary(target, plan, args.dry_run))


if __name__ == "__main__":
    sys.exit(main())
