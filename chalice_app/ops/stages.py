"""The environment variables a Chalice stage sets, read from `.chalice/config.json` (their one source).

`set_model_variants` writes a stage's A/B routing (MODEL_VARIANTS) there; a deployment makes it live.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from chalicelib.config import MODEL_VARIANTS, format_model_variants, parse_model_variants

CHALICE_DIR = Path(__file__).resolve().parents[1]
CONFIG_FILE = CHALICE_DIR / ".chalice" / "config.json"
INVOKE_ENDPOINT = "sagemaker:InvokeEndpoint"


def stage_environment(stage: str, config_file: Path = CONFIG_FILE) -> dict[str, str]:
    """Top-level variables overridden by the stage's, as Chalice merges them."""
    config = json.loads(config_file.read_text())
    return {**config.get("environment_variables", {}),
            **_stage(config, stage, config_file).get("environment_variables", {})}


def function_name(stage: str) -> str:
    """The API handler's Lambda name as Chalice deploys it (its log group is /aws/lambda/<name>)."""
    return f"{json.loads(CONFIG_FILE.read_text())['app_name']}-{stage}"


def model_variants(stage: str, config_file: Path = CONFIG_FILE) -> dict[str, float]:
    """The stage's routing: MODEL_VARIANTS as endpoint -> weight, else its ENDPOINT_NAME with weight 1."""
    environment = stage_environment(stage, config_file)
    if MODEL_VARIANTS in environment:
        return {v.endpoint_name: v.weight for v in parse_model_variants(environment[MODEL_VARIANTS])}
    return {environment["ENDPOINT_NAME"]: 1.0}


def set_model_variants(stage: str, weights: Mapping[str, float] | None, config_file: Path = CONFIG_FILE) -> None:
    """Route the stage's traffic between endpoints by weight, e.g. `{"news-v3": 0.9, "news-v4": 0.1}`.

    `None` removes MODEL_VARIANTS: ENDPOINT_NAME alone answers again. The weights are checked as the API
    checks them. A stage with a hand-written IAM policy (dev, prod) is granted InvokeEndpoint on exactly its
    ENDPOINT_NAME and these endpoints. Takes effect with the next deployment of the stage (`make deploy`, or
    `python -m chalice_app.local.stack --variant` offline).
    """
    set_stage_variable(stage, MODEL_VARIANTS, None if weights is None else format_model_variants(weights),
                       config_file)
    stage_config = _stage(json.loads(config_file.read_text()), stage, config_file)
    if "iam_policy_file" in stage_config:
        endpoints = {stage_environment(stage, config_file)["ENDPOINT_NAME"], *(weights or {})}
        _grant_invoke(config_file.parent / stage_config["iam_policy_file"], sorted(endpoints))


def set_stage_variable(stage: str, name: str, value: str | None, config_file: Path = CONFIG_FILE) -> None:
    """Set (None: remove) one of the stage's environment variables; takes effect at its next deployment."""
    config = json.loads(config_file.read_text())
    variables = _stage(config, stage, config_file).setdefault("environment_variables", {})
    if value is None:
        variables.pop(name, None)
    else:
        variables[name] = value
    config_file.write_text(json.dumps(config, indent=2) + "\n")


def _stage(config: dict, stage: str, config_file: Path) -> dict:
    if stage not in config.get("stages", {}):
        raise ValueError(f"no stage {stage!r} in {config_file}; stages: {', '.join(config.get('stages', {}))}")
    return config["stages"][stage]


def _grant_invoke(policy_file: Path, endpoints: list[str]) -> None:
    """Point the policy's InvokeEndpoint statement at these endpoints (ARNs carry names in lower case)."""
    policy = json.loads(policy_file.read_text())
    (statement,) = [s for s in policy["Statement"] if s["Action"] == INVOKE_ENDPOINT]
    arns = [{"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:"
                        f"endpoint/{name.lower()}"} for name in endpoints]
    statement["Resource"] = arns[0] if len(arns) == 1 else arns
    policy_file.write_text(json.dumps(policy, indent=2) + "\n")
