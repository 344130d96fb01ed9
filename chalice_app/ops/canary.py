"""Give a new model endpoint a share of a stage's traffic: the A/B step of a promotion.

    python -m chalice_app.ops.canary --stage dev --endpoint NAME --weight 0.1 [--apply | --dry-run]

The other endpoints keep their proportions within the rest, so weight 1 completes the rollout
(docs/ab-and-retraining.md).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from chalice_app.chalicelib.config import MODEL_VARIANTS, ConfigError, format_model_variants, parse_model_variants
from chalice_app.ops.aws_stage import DeployError, Stage
from devkit.stages import CHALICE_DIR, CONFIG_FILE, model_variants, set_stage_variable

DEPLOY_MODULE = "chalice_app.ops.deploy"


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


def current_weights(stage: str, current: str | None) -> dict[str, float]:
    """`--current` when given (a stage whose routing lives elsewhere, e.g. the local registry), else the stage's."""
    if current is None:
        return model_variants(stage)
    return {variant.endpoint_name: variant.weight for variant in parse_model_variants(current)}


def redeploy_command(stage: str, deploy_args: Sequence[str], dry_run: bool) -> list[str]:
    return [sys.executable, "-m", DEPLOY_MODULE, "--stage", stage, "--skip-endpoint", *deploy_args,
            *(["--dry-run"] if dry_run else [])]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, help="Chalice stage: local, dev or prod")
    parser.add_argument("--endpoint", required=True, help="the endpoint that takes the canary share")
    parser.add_argument("--weight", type=float, default=0.1, help="its share of the traffic, (0, 1] (default 0.1)")
    parser.add_argument("--current", help="MODEL_VARIANTS to start from instead of the stage's own")
    parser.add_argument("--apply", action="store_true",
                        help="write the stage's MODEL_VARIANTS and redeploy its API (AWS stages)")
    parser.add_argument("--deploy-args", nargs=argparse.REMAINDER, default=[],
                        help="passed on to chalice_app.ops.deploy, e.g. --bucket my-bucket --region eu-west-1 "
                             "(last option)")
    parser.add_argument("--dry-run", action="store_true", help="print what --apply would write and deploy")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        before = current_weights(args.stage, args.current)
        after = with_canary(before, args.endpoint, args.weight)
        value = format_model_variants(after)
        if args.apply:
            Stage.load(args.stage)  # only AWS stages are deployed
    except (CanaryError, ConfigError, DeployError, ValueError, KeyError) as exc:
        print(f"canary: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"stage": args.stage, "endpoint": args.endpoint, "weight": args.weight, "before": before,
                      "variants": after, "MODEL_VARIANTS": value}), flush=True)
    if not args.apply:
        return 0
    if not args.dry_run:
        set_model_variants(args.stage, after)
    return subprocess.run(redeploy_command(args.stage, args.deploy_args, args.dry_run),
                          cwd=CHALICE_DIR.parent).returncode


if __name__ == "__main__":
    sys.exit(main())
