"""What a Chalice stage deploys, read from `.chalice/config.json` (the one source of these facts): its environment
variables (the API's and each function's, merged as Chalice merges them), its Lambda names, its routing, where
its drift baselines live, whose feedback may train. `set_stage_variable` writes one variable back; a deployment
makes it live.

The API's own parsers read the variables (chalice_app.chalicelib.config, imported by its package path: the Lambda
and `chalice local` import the same files as top-level `chalicelib`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalice import Chalice
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
from chalice.deploy.models import LambdaFunction

from chalice_app.chalicelib.config import MODEL_VARIANTS, ConfigError, KeyIds, key_ids, parse_model_variants
from chalice_app.chalicelib.drift_baselines import MODEL_VERSION_PLACEHOLDER, S3_SCHEME
from devkit.repo import CHALICE_DIR

CONFIG_FILE = CHALICE_DIR / ".chalice" / "config.json"
DEPLOYED_DIR = CHALICE_DIR / ".chalice" / "deployed"  # `chalice deploy` records what it created here, per stage
INVOKE_ENDPOINT = "sagemaker:InvokeEndpoint"
API_HANDLER = "api_handler"  # Chalice's name for the function behind the REST API
DRIFT_HANDLER = "monitor_drift"  # app.py's hourly drift job
OPERATORS = "OPERATOR_KEY_IDS"  # keys that read every client's transactions (chalicelib/callers.py)
REVIEWERS = "REVIEWER_KEY_IDS"  # keys whose feedback trains models, with no other right than a client's
TRAINERS = "TRAINING_KEY_IDS"  # when set, exactly the keys whose feedback trains; else operators and reviewers


def read_config(config_file: Path = CONFIG_FILE) -> dict[str, Any]:
    return json.loads(config_file.read_text())


def stage_config(stage: str, config_file: Path = CONFIG_FILE) -> dict[str, Any]:
    """The stage's own section; ValueError naming the stages there are when it has none."""
    return _stage(read_config(config_file), stage, config_file)


def stage_environment(stage: str, config_file: Path = CONFIG_FILE) -> dict[str, str]:
    """Top-level variables overridden by the stage's, as Chalice merges them (the API handler's variables)."""
    config = read_config(config_file)
    return {**config.get("environment_variables", {}),
            **_stage(config, stage, config_file).get("environment_variables", {})}


def function_environment(stage: str, handler: str, config_file: Path = CONFIG_FILE) -> dict[str, str]:
    """One function's variables: the stage's, overridden by the stage's `lambda_functions.<handler>` ones
    (Chalice ignores the top-level `lambda_functions` for variables)."""
    functions = stage_config(stage, config_file).get("lambda_functions", {})
    return {**stage_environment(stage, config_file), **functions.get(handler, {}).get("environment_variables", {})}


def deployed_functions(stage: str, config_file: Path = CONFIG_FILE,
                       app: Chalice | None = None) -> dict[str, dict[str, str]]:
    """Every Lambda function `chalice deploy` creates for the stage, by handler name (`api_handler` behind the REST
    API, `monitor_drift`, any other the app declares), with the variables it gets: read through Chalice's own
    application graph, so that a variable set at any level Chalice merges (top, stage, the stage's
    `lambda_functions.<name>`) is seen in the function it lands in. `app` is app.py's unless given."""
    if app is None:
        app = CLIFactory(str(config_file.parents[1])).load_chalice_app()  # as `chalice deploy` loads app.py
    config = read_config(config_file)
    _stage(config, stage, config_file)
    graph = ApplicationGraphBuilder().build(Config(chalice_stage=stage, config_from_disk=config, user_provided_params={
        "chalice_app": app, "project_dir": str(config_file.parents[1])}), stage)
    return {resource.resource_name: resource.environment_variables
            for resource in DependencyBuilder().build_dependencies(graph) if isinstance(resource, LambdaFunction)}


def function_name(stage: str, handler: str = API_HANDLER, config_file: Path = CONFIG_FILE) -> str:
    """A Lambda's name as `chalice deploy` names it: <app>-<stage> for the API, <app>-<stage>-<handler> for the
    others (the log group is /aws/lambda/<name>)."""
    base = f"{read_config(config_file)['app_name']}-{stage}"
    return base if handler == API_HANDLER else f"{base}-{handler}"


def model_variants(stage: str, config_file: Path = CONFIG_FILE) -> dict[str, float]:
    """The stage's routing: MODEL_VARIANTS as endpoint -> weight, else its ENDPOINT_NAME with weight 1."""
    environment = stage_environment(stage, config_file)
    if MODEL_VARIANTS in environment:
        return {v.endpoint_name: v.weight for v in parse_model_variants(environment[MODEL_VARIANTS])}
    return {environment["ENDPOINT_NAME"]: 1.0}


def baseline_location(stage: str, config_file: Path = CONFIG_FILE) -> tuple[str, str]:
    """(bucket, key prefix) of the stage's drift baselines: DRIFT_BASELINE_URI is
    s3://<bucket>/<prefix>/{model_version}/drift_baseline.json, where model.tools.deploy_endpoint puts each
    version's."""
    uri = function_environment(stage, DRIFT_HANDLER, config_file).get("DRIFT_BASELINE_URI", "")
    bucket, _, key = uri.removeprefix(S3_SCHEME).partition("/")
    prefix, placeholder, rest = key.partition(f"/{MODEL_VERSION_PLACEHOLDER}/")
    if not uri.startswith(S3_SCHEME) or not bucket or not placeholder or rest != "drift_baseline.json":
        raise ValueError(f"stage {stage!r}: DRIFT_BASELINE_URI of {DRIFT_HANDLER} must be "
                         f"s3://BUCKET/PREFIX/{MODEL_VERSION_PLACEHOLDER}/drift_baseline.json, got {uri!r}")
    return bucket, prefix


def training_keys(stage: str, config_file: Path = CONFIG_FILE) -> KeyIds:
    """The keys whose feedback labels may train a model (training_jobs/feedback_export.py): the stage's TRAINING_KEY_IDS
    when it sets them, else its operators and reviewers. "*" names every key (the local stage's operators)."""
    environment = stage_environment(stage, config_file)
    try:
        if environment.get(TRAINERS, "").strip():
            return key_ids(TRAINERS, environment)
        operators, reviewers = key_ids(OPERATORS, environment), key_ids(REVIEWERS, environment)
    except ConfigError as exc:
        raise ValueError(f"stage {stage!r}: {exc}") from exc
    return KeyIds(operators.ids | reviewers.ids, operators.everyone or reviewers.everyone)


def set_stage_variable(stage: str, name: str, value: str | None, config_file: Path = CONFIG_FILE) -> None:
    """Set (None: remove) one of the stage's environment variables; takes effect at its next deployment."""
    config = read_config(config_file)
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
