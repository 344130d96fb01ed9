"""The AWS stages' files as the tests read them: a stage's settings, its API policy and the infra template."""

from __future__ import annotations

import json
from typing import Any

from chalice.package import YAMLTemplateSerializer

from chalice_app.ops import infra
from devkit.stages import CHALICE_DIR, CONFIG_FILE


def stage_config(stage: str) -> dict[str, Any]:
    """The stage's effective settings, stage keys over top-level keys, as Chalice reads them."""
    config = json.loads(CONFIG_FILE.read_text())
    return {**{k: v for k, v in config.items() if k != "stages"}, **config["stages"][stage]}


def policy(stage: str) -> dict[str, Any]:
    return json.loads((CHALICE_DIR / ".chalice" / stage_config(stage)["iam_policy_file"]).read_text())


def infra_template() -> dict[str, Any]:
    return YAMLTemplateSerializer().load_template(infra.TEMPLATE.read_text())


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value
