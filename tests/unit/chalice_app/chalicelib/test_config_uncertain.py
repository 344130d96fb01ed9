"""One "uncertain" line: the API's default, the drift baseline's low-confidence line and the evaluation's threshold
are model/calibration.py's UNCERTAIN_BELOW; the Lambda zip cannot import model/, so its copy is pinned here."""

from __future__ import annotations

import yaml
from chalicelib.config import DEFAULT_UNCERTAIN_BELOW, score_settings

from model.calibration import UNCERTAIN_BELOW
from tests.support import REPO_ROOT

OPENAPI = REPO_ROOT / "chalice_app" / "openapi.yaml"


def test_the_apis_default_is_the_models_line() -> None:
    assert DEFAULT_UNCERTAIN_BELOW == UNCERTAIN_BELOW == score_settings({}).uncertain_below


def test_the_documented_default_is_the_enforced_one() -> None:
    description = yaml.safe_load(OPENAPI.read_text())["components"]["schemas"]["Uncertain"]["description"]
    assert f"(default {UNCERTAIN_BELOW:g})" in description
