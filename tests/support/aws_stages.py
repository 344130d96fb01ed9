"""The AWS stages' files as the tests read them: a stage's settings, its policies (as `make deploy` writes them for
moto's account and region) and the infra template."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from chalice.package import YAMLTemplateSerializer

from chalice_app.ops import infra, policies
from chalice_app.ops.policies import Place
from devkit.stages import CHALICE_DIR, CONFIG_FILE

PLACE = Place(account="123456789012", region="us-east-1")  # moto's account; the region the tests deploy to


def stage_config(stage: str) -> dict[str, Any]:
    """The stage's effective settings, stage keys over top-level keys, as Chalice reads them."""
    config = json.loads(CONFIG_FILE.read_text())
    return {**{k: v for k, v in config.items() if k != "stages"}, **config["stages"][stage]}


def policy(stage: str) -> dict[str, Any]:
    """The API function's policy, for PLACE."""
    return policies.api_policy(stage, PLACE)


def drift_policy(stage: str) -> dict[str, Any]:
    """The drift job's policy, for PLACE."""
    return policies.drift_policy(stage, PLACE)


def project_with_policies(folder: Path) -> Path:
    """A copy of the Chalice project, as a clone has it, with every AWS stage's policy files written for PLACE (as
    `make deploy` or `python -m chalice_app.ops.policies` writes them before Chalice reads them)."""
    project = Path(shutil.copytree(CHALICE_DIR, folder / "chalice_app", ignore=shutil.ignore_patterns(
        "deployments", "deployed", "__pycache__", "ops", "local", "reports", "policy-*.json")))
    for stage in policies.aws_stages():
        policies.write(stage, PLACE, chalice_dir=project / ".chalice")
    return project


def infra_template() -> dict[str, Any]:
    return YAMLTemplateSerializer().load_template(infra.TEMPLATE.read_text())


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value
