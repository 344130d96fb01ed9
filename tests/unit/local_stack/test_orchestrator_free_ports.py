"""`local_stack.orchestrator --api-port 0` (and the other two): a free port each, as loadtest's own stacks ask."""

from __future__ import annotations

from local_stack.orchestrator import parse_args


def test_port_zero_becomes_a_free_port_and_a_given_port_is_kept() -> None:
    config = parse_args(["--api-port", "0", "--endpoint-port", "0", "--dynamodb-port", "8001"])
    assert config.api_port > 0 and config.endpoint_port > 0 and config.api_port != config.endpoint_port
    assert config.dynamodb_port == 8001
