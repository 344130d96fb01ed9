"""Point an offline report (`chalice_app.reports.ab`, `chalice_app.reports.drift`) at a stage's transaction table,
and the A/B report's replay at the stage's endpoints.

The reports run on a person's machine, not in Lambda: they take the stage's variables from
`.chalice/config.json` unless already set, and for the local stage the running `make local`'s moto address and
endpoint server.
"""

from __future__ import annotations

import os
from pathlib import Path

from devkit.local_stack_state import FAKE_AWS, NoLocalStackError, local_dynamodb_url, local_endpoint_url
from devkit.stages import stage_environment

READ_TIMEOUT_S = "30"  # the API's 1 s table budget is for its request path; a report reading pages can wait
MODEL_READ_TIMEOUT_S = "60"  # the API's 7 s are for its clients; a serverless endpoint starting cold may need more


class ReportError(RuntimeError):
    """The report cannot be made; the message says why."""


def use_stage(stage: str, local_state_dir: Path) -> None:
    """The stage's variables (TABLE_NAME, ...); for the local stage, the running `make local`'s moto."""
    for name, value in {"TABLE_READ_TIMEOUT_SECONDS": READ_TIMEOUT_S, **stage_environment(stage)}.items():
        os.environ.setdefault(name, value)
    if stage == "local" and not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        try:
            os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = local_dynamodb_url(local_state_dir)
        except NoLocalStackError as exc:
            raise ReportError(str(exc)) from None
        os.environ.update(FAKE_AWS)


def use_stage_endpoints(stage: str, local_state_dir: Path) -> None:
    """The model client's settings for a report that calls the stage's endpoints (after `use_stage`): a patient read
    timeout, and for the local stage the running `make local`'s endpoint server."""
    os.environ.setdefault("MODEL_READ_TIMEOUT_SECONDS", MODEL_READ_TIMEOUT_S)
    if stage == "local" and not os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        try:
            os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = local_endpoint_url(local_state_dir)
        except NoLocalStackError as exc:
            raise ReportError(str(exc)) from None
