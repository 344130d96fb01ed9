"""A bounded schemathesis run in the suite, so CI keeps fuzzing the API a little (`make fuzz` runs the full budget).

The app is served by `chalice local`'s own HTTP server class in a thread, with moto's table and the tiny model
behind the local endpoint (the `api` fixture), and fuzzed with the checks of loadtest/schemathesis.toml.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import schemathesis
from chalice.cli.factory import CLIFactory
from chalice.local import LocalDevServer
from chalice.test import Client
from hypothesis import HealthCheck, settings

from devkit.stages import CHALICE_DIR
from tests.support import REPO_ROOT

FUZZ_CONFIG = REPO_ROOT / "loadtest" / "schemathesis.toml"
EXAMPLES_PER_OPERATION = 15


@pytest.fixture
def chalice_local(api: Client) -> Iterator[str]:
    """`chalice local`'s server (LocalDevServer: the local API Gateway in front of the app) on a free port.

    Built without `chalice local`'s swap of the app's class, which makes `current_request` thread-local for
    concurrent requests and would outlive the test: the fuzzer sends one request at a time.
    """
    from app import app

    config = CLIFactory(str(CHALICE_DIR)).create_config_obj(chalice_stage_name="local")
    server = LocalDevServer(app, config, "127.0.0.1", 0)
    thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server.server_address[1]}"
    server.shutdown()
    server.server.server_close()
    thread.join()


# Loaded at import for @schema.parametrize (one test per operation); the server's URL is given to each call.
schema = schemathesis.openapi.from_path(CHALICE_DIR / "openapi.yaml", config=schemathesis.Config.from_path(FUZZ_CONFIG))


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_the_api_answers_every_generated_request_as_documented(case: schemathesis.Case, chalice_local: str) -> None:
    case.call_and_validate(base_url=chalice_local)
