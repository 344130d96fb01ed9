"""What a running local stack shares with the tools that use it: the state file it writes once every service
answers (URLs, process groups), the fake credentials that keep every local AWS call away from AWS, and where the
local stage's own configuration expects the stand-ins (a plain `chalice local --stage local` finds them there)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from botocore.configloader import load_config

from devkit.local_servers import NotUpError, wait_until
from devkit.stages import CHALICE_DIR, stage_environment

STATE_FILE = "local_stack.json"  # in the stack's --state-dir (make local: LOCAL_STATE_DIR, artifacts/local)
LOCK_FILE = "local_stack.lock"
DYNAMODB_DATABASE = "dynamodb.sqlite3"  # the local table across restarts (local_stack/table_store.py)
DATABASE_VARIABLE = "LOCAL_DYNAMODB_DATABASE"  # where the DynamoDB stand-in keeps it
LEGACY_RECORDING = "dynamodb-recording.jsonl"  # how the table was kept before: imported once, then renamed
# The local stack must never reach AWS: its services get these instead of the caller's AWS_* variables.
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1"}


STAND_IN_SERVICES = {"AWS_ENDPOINT_URL_DYNAMODB": "dynamodb",  # the variable boto3 reads -> the config file's key
                     "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "sagemaker_runtime"}


def stage_stand_in_urls(stage: str = "local") -> dict[str, str]:
    """Where the stage's AWS config file (its AWS_CONFIG_FILE, relative to the Chalice project, where `chalice local`
    runs) sends each stand-in's service, by the variable that overrides it; empty when the stage names no file."""
    relative = stage_environment(stage).get("AWS_CONFIG_FILE")
    if relative is None:
        return {}
    config = load_config(str(CHALICE_DIR / relative))
    services = config["services"].get(config["profiles"]["default"].get("services", ""), {})
    return {name: services[key]["endpoint_url"] for name, key in STAND_IN_SERVICES.items() if key in services}


def delete_local_table(state_dir: Path) -> None:
    """An empty table at the stack's next start: its database (with SQLite's WAL files) and any old recording go."""
    for name in (DYNAMODB_DATABASE, f"{DYNAMODB_DATABASE}-wal", f"{DYNAMODB_DATABASE}-shm", LEGACY_RECORDING):
        (state_dir / name).unlink(missing_ok=True)


def fake_client_arguments() -> dict[str, str]:
    """FAKE_AWS as boto3.client() keyword arguments."""
    return {"aws_access_key_id": FAKE_AWS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": FAKE_AWS["AWS_SECRET_ACCESS_KEY"], "region_name": FAKE_AWS["AWS_REGION"]}


class NoLocalStackError(RuntimeError):
    """No running stack's state where a tool looked; the message says what to start or set."""


def read_state(state_dir: Path) -> dict[str, Any]:
    """The running stack's state file; OSError or ValueError when there is none (or it is unreadable)."""
    return json.loads((state_dir / STATE_FILE).read_text())


def wait_for_state(state_dir: Path, process: subprocess.Popen, timeout_s: float) -> dict[str, Any] | None:
    """The state file of a stack started as `process`, once written (every service answered); None when the
    process exits or `timeout_s` passes first."""
    state: dict[str, Any] = {}

    def written() -> bool:
        try:
            state.update(read_state(state_dir))
        except (OSError, ValueError):
            return False
        return True

    try:
        wait_until(written, time.monotonic() + timeout_s, process, poll_s=0.2)
    except NotUpError:
        return None
    return state


def local_dynamodb_url(state_dir: Path) -> str:
    """moto's URL from the state of the running `make local`, for tools that read its table."""
    return _state_url(state_dir, "dynamodb_url", "moto's URL", "AWS_ENDPOINT_URL_DYNAMODB")


def local_endpoint_url(state_dir: Path) -> str:
    """The local endpoint server's URL from the state of the running `make local`, for tools that call its models."""
    return _state_url(state_dir, "endpoint_url", "the endpoint's URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")


def _state_url(state_dir: Path, key: str, what: str, variable: str) -> str:
    state_file = state_dir / STATE_FILE
    try:
        return str(read_state(state_dir)[key])
    except FileNotFoundError:
        raise NoLocalStackError(f"{state_file}: missing; is `make local` running with LOCAL_STATE_DIR={state_dir}? "
                                f"Or set {variable}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise NoLocalStackError(f"{state_file}: cannot read {what} ({exc}); is `make local` running with "
                                f"LOCAL_STATE_DIR={state_dir}? Or set {variable}") from None
