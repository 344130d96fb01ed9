"""loadtest.target_stack: the `make local` a load run may use is the one whose state file names an API that answers."""

from __future__ import annotations

import json
from pathlib import Path

from devkit.local_servers import unused_port
from devkit.local_stack_state import STATE_FILE
from loadtest.target_stack import running_stack
from tests.support.healthy_server import healthy_server


def write_state(state_dir: Path, api_url: str) -> None:
    (state_dir / STATE_FILE).write_text(json.dumps({"api_url": api_url, "endpoint_url": "", "dynamodb_url": "",
                                                    "process_groups": {}}))


def test_a_stack_whose_api_answers_is_running(tmp_path: Path) -> None:
    with healthy_server() as url:
        write_state(tmp_path, url)
        stack = running_stack(tmp_path)
    assert stack is not None and stack.api_url == url


def test_a_state_file_whose_api_does_not_answer_is_no_running_stack(tmp_path: Path) -> None:
    write_state(tmp_path, f"http://127.0.0.1:{unused_port()}")
    assert running_stack(tmp_path) is None
    assert running_stack(tmp_path / "nothing-here") is None
