"""An AWS stage (dev, prod) as a deployment reads it from .chalice/config.json: refused when the API would refuse its
settings, when it would be open to anyone, or when it has no hand-written policy (it is not meant for AWS).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from chalice import Chalice

from chalice_app.chalicelib.config import exposure_problems, settings_problems
from chalice_app.ops import infra
from devkit.stages import (
    API_HANDLER,
    CONFIG_FILE,
    baseline_location,
    deployed_functions,
    function_name,
    stage_config,
)


class DeployError(RuntimeError):
    """The deployment stopped; the message says where and why."""


def _per_function(functions: dict[str, dict[str, str]], check: Callable[[Mapping[str, str]], list[str]]) -> str:
    """What `check` finds in each function's variables, each problem named with its function."""
    return "; ".join(f"{function}: {problem}" for function, environment in functions.items()
                     for problem in check(environment))


@dataclass(frozen=True)
class Stage:
    """What one Chalice stage deploys, read from .chalice/config.json."""

    name: str
    api_stage: str
    environment: dict[str, str]  # the API handler's variables

    @classmethod
    def load(cls, name: str, config_file: Path = CONFIG_FILE, app: Chalice | None = None) -> Stage:
        """An AWS stage: one with a hand-written policy and settings the API accepts (a broken one would fail
        requests, or leave them unrecorded, after deploying), checked in every function's own variables (Chalice
        lays a function's `lambda_functions.<name>` variables over the stage's and the top level's)."""
        try:
            functions = deployed_functions(name, config_file, app)
            infra.check_stage(name)
        except (ValueError, infra.InfraError) as exc:
            raise DeployError(str(exc)) from exc
        where = f"stage {name!r} in {config_file}"
        problems = _per_function(functions, settings_problems)
        if problems:
            raise DeployError(f"{where}: the API would refuse {problems}")
        exposed = _per_function(functions, exposure_problems)
        if exposed:
            raise DeployError(f"{where} would be open on AWS: {exposed}")
        return cls(name, stage_config(name, config_file).get("api_gateway_stage", "api"), functions[API_HANDLER])

    @property
    def stack_name(self) -> str:
        """The API's own stack on the CloudFormation path."""
        return function_name(self.name)

    @property
    def artifacts(self) -> tuple[str, str]:
        """(bucket, prefix) of the model versions: where the drift job reads their baselines."""
        try:
            return baseline_location(self.name)
        except ValueError as exc:
            raise DeployError(str(exc)) from exc
