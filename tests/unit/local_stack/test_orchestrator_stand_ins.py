"""`make stand-ins` (`local_stack.orchestrator --stand-ins-only`): moto and the endpoint without the stack's own API, a
banner that gives the plain `chalice local` command, and a state file the tools that need an API do not mistake for a
whole stack."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from devkit.local_servers import unused_port
from devkit.local_stack_state import STATE_FILE
from loadtest.target_stack import read_state
from local_stack.orchestrator import (
    Stack,
    StopSignals,
    already_running_message,
    chalice_local_command,
    check_ports_free,
    parse_args,
)


def test_on_the_default_ports_the_plain_command_needs_no_export() -> None:
    assert chalice_local_command(parse_args(["--stand-ins-only"])) == "cd chalice_app && chalice local --stage local"


def test_on_other_ports_the_command_exports_what_the_stage_does_not_name() -> None:
    config = parse_args(["--stand-ins-only", "--dynamodb-port", "9001", "--api-port", "9000"])
    assert chalice_local_command(config) == ("cd chalice_app && export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:9001"
                                             " && chalice local --stage local --port 9000")


def test_the_state_of_stand_ins_names_no_api_so_a_load_run_starts_its_own_stack(tmp_path: Path) -> None:
    config = parse_args(["--stand-ins-only", "--state-dir", str(tmp_path)])
    state = Stack(config, StopSignals()).state()
    assert "api_url" not in state and state["dynamodb_url"] == "http://127.0.0.1:8001"
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    assert read_state(tmp_path) is None
    assert "stand-ins at http://127.0.0.1:8001" in already_running_message(tmp_path)


def test_the_api_port_may_be_busy_for_stand_ins(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = parse_args(["--stand-ins-only", "--api-port", str(busy.getsockname()[1]), "--endpoint-port",
                             str(unused_port()), "--dynamodb-port", str(unused_port())])
        check_ports_free(config)
