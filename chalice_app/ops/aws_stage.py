"""An AWS stage (dev, prod) as a deployment reads it from .chalice/config.json: refused when the API would refuse its
settings, when it would be open to anyone, or when it has no hand-written policy (it is not meant for AWS).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from chalice_app.chalicelib.config import exposure_problems, settings_problems
from chalice_app.ops import infra
from devkit.stages import CONFIG_FILE, baseline_location, function_name, stage_environment


class DeployError(RuntimeError):
    """The deployment stopped; the message says where and why."""


@dataclass(frozen=True)
class Stage:
    """What one Chalice stage deploys, read from .chalice/config.json."""

    name: str
    api_stage: str
    environment: dict[str, str]

    @classmethod
    def load(cls, name: str) -> Stage:
        """An AWS stage: one with a hand-written policy and settings the API accepts (a broken one would fail
        requests, or leave them unrecorded, after deploying)."""
        try:
            environment = stage_environment(name)
            infra.check_stage(name)
        except (ValueError, infra.InfraError) as exc:
            raise DeployError(str(exc)) from exc
        problems = settings_problems(environment)
        if problems:
            raise DeployError(f"stage {name!r} in {CONFIG_FILE}: the API would refuse {'; '.join(problems)}")
        exposed = exposure_problems(environment)
        if exposed:
            raise DeployError(f"stage {name!r} in {CONFIG_FILE} would be open on AWS: {'; '.join(exposed)}")
        config = json.loads(CONFIG_FILE.read_text())["stages"][name]
        return cls(name, config.get("api_gateway_stage", "api"), environment)

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
