"""Give a model endpoint a share of a stage's traffic: the A/B step of a promotion (chalice_app/ops/promote.py), or
alone for an endpoint already deployed, e.g. to finish a rollout.

    python -m chalice_app.ops.canary --stage dev --endpoint NAME --weight 0.1 [--apply [--dry-run]]

The other endpoints keep their proportions within the rest, so weight 1 completes the rollout. `--apply` runs one plan
(devkit/plan.py): write the stage's MODEL_VARIANTS, then `make deploy`'s chain without its endpoint step;
`--dry-run` prints that plan and changes nothing (docs/ab-and-retraining.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from chalice_app.chalicelib.config import MODEL_VARIANTS, ConfigError, format_model_variants
from chalice_app.ops import deploy, infra
from chalice_app.ops.api_gateway import Fetch, fetch_json
from chalice_app.ops.aws_stage import DeployError
from chalice_app.ops.chalice_deploy import Runner, run_command
from chalice_app.ops.cloudformation import StackError
from chalice_app.ops.exit_codes import exit_code
from devkit.plan import Call, Step, as_comment, execute, show
from devkit.stages import CONFIG_FILE, model_variants, set_stage_variable

ROUTING = "routing"  # the step's name: its result is the stage's routing after it


class CanaryError(ValueError):
    """The canary cannot be set as asked; the message says what to change."""


def with_canary(weights: Mapping[str, float], endpoint: str, share: float) -> dict[str, float]:
    """`endpoint` takes `share` of the traffic; the others split the rest in their current proportions."""
    if not (math.isfinite(share) and 0 < share <= 1):
        raise CanaryError(f"--weight {share!r}: the canary's share must be greater than 0 and at most 1")
    others = {name: weight for name, weight in weights.items() if name != endpoint and weight > 0}
    total = sum(others.values())
    if not total:
        return {endpoint: 1.0}
    rest = {name: round(weight / total * (1 - share), 6) for name, weight in others.items()}
    return {**{name: weight for name, weight in rest.items() if weight > 0}, endpoint: share}


def set_model_variants(stage: str, weights: Mapping[str, float] | None, config_file: Path = CONFIG_FILE) -> None:
    """Route the stage's traffic between endpoints by weight, e.g. `{"news-v3": 0.9, "news-v4": 0.1}`.

    `None` removes MODEL_VARIANTS: ENDPOINT_NAME alone answers again. The weights are checked as the API
    checks them. Takes effect with the next deployment of the stage (`make deploy`, whose policies grant
    InvokeEndpoint on exactly ENDPOINT_NAME and these endpoints; or `python -m local_stack.orchestrator --variant`
    offline).
    """
    set_stage_variable(stage, MODEL_VARIANTS, None if weights is None else format_model_variants(weights),
                       config_file)


def routing_step(stage: str, variants: Mapping[str, float], config_file: Path = CONFIG_FILE) -> Step[Any]:
    """Write the stage's new routing (a local file: the API redeployment after it makes it live); its result is the
    routing."""
    value = format_model_variants(variants)
    call = Call("stage_config", "set_model_variants", {"stage": stage, MODEL_VARIANTS: value},
                f"in {config_file.parent.name}/{config_file.name}")

    def run(_: object, __: object) -> dict[str, float]:
        set_model_variants(stage, variants, config_file)
        return dict(variants)

    return Step(ROUTING, [call], run, title=f"{stage}: MODEL_VARIANTS {value}")


def redeploy_options(stage: str, deploy_args: Sequence[str], model_dir: Path | None = None) -> deploy.Options:
    """`make deploy`'s options from its own command line (`--region`, `--via`, `--endpoint-args`...), for the chain
    without its endpoint step."""
    argv = ["--stage", stage, *(["--model-dir", str(model_dir)] if model_dir else []), *deploy_args]
    return replace(deploy.options_from_args(deploy.parse_args(argv)), skip_endpoint=True)


def canary_plan(options: deploy.Options, variants: Mapping[str, float], config_file: Path = CONFIG_FILE,
                run: Runner = run_command, fetch: Fetch = fetch_json) -> list[Step[infra.Clients]]:
    """The routing, then the API redeployed with it (the chain of `make deploy` without the endpoint)."""
    return [routing_step(options.stage.name, variants, config_file), *deploy.chain_plan(options, run, fetch)]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, help="Chalice stage: local, dev or prod")
    parser.add_argument("--endpoint", required=True, help="the endpoint that takes the canary share")
    parser.add_argument("--weight", type=float, default=0.1, help="its share of the traffic, (0, 1] (default 0.1)")
    parser.add_argument("--apply", action="store_true",
                        help="write the stage's MODEL_VARIANTS and redeploy its API (AWS stages)")
    parser.add_argument("--deploy-args", nargs=argparse.REMAINDER, default=[],
                        help="chalice_app.ops.deploy's options, e.g. --region eu-west-1 --via cloudformation "
                             "(last option)")
    parser.add_argument("--dry-run", action="store_true", help="print what --apply would write and deploy")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return exit_code("canary", lambda: run(args), (CanaryError, ConfigError, DeployError, StackError,
                                                   infra.InfraError, ValueError, KeyError))


def run(args: argparse.Namespace) -> None:
    before = model_variants(args.stage)
    after = with_canary(before, args.endpoint, args.weight)
    options = redeploy_options(args.stage, args.deploy_args) if args.apply else None
    print(json.dumps({"stage": args.stage, "endpoint": args.endpoint, "weight": args.weight, "before": before,
                      "variants": after, "MODEL_VARIANTS": format_model_variants(after)}), flush=True)
    if options is None:
        return
    if args.dry_run:
        show(canary_plan(options, after), as_comment)
    else:
        print(execute(canary_plan(options, after), infra.Clients.create(options.region))["report"])


if __name__ == "__main__":
    sys.exit(main())
