"""The environment variables a Chalice stage sets, read from `.chalice/config.json` (their one source)."""

from __future__ import annotations

import json
from pathlib import Path

CHALICE_DIR = Path(__file__).resolve().parent
CONFIG_FILE = CHALICE_DIR / ".chalice" / "config.json"


def stage_environment(stage: str) -> dict[str, str]:
    """Top-level variables overridden by the stage's, as Chalice merges them."""
    config = json.loads(CONFIG_FILE.read_text())
    if stage not in config.get("stages", {}):
        raise ValueError(f"no stage {stage!r} in {CONFIG_FILE}; stages: {', '.join(config.get('stages', {}))}")
    return {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}


def function_name(stage: str) -> str:
    """The API handler's Lambda name as Chalice deploys it (its log group is /aws/lambda/<name>)."""
    return f"{json.loads(CONFIG_FILE.read_text())['app_name']}-{stage}"
