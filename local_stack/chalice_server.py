"""`chalice local` as `make local` runs it: TCP_NODELAY on every connection, and no traffic before its table and
model endpoint answer.

    python -m local_stack.chalice_server --project-dir chalice_app local --stage local --port 8000

Chalice's dev server writes headers and body separately, and Nagle's algorithm with delayed ACKs would hold every
later response on a kept-alive connection. It also serves as soon as it has imported the app, while the stack may
still be loading the table or the model: a request answered then would have its record logged as unsaved. So until
the API's table and its endpoint have both answered once, `/health` answers 503 at once and every other request
waits up to STARTING_WAIT_S, then gets 503; both with Retry-After (docs/local-stack.md). After that the API meets
an outage as on AWS. Not part of the Lambda package.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from chalice.cli import main
from chalice.local import ChaliceRequestHandler

from devkit.local_servers import answers

HEALTH_PATH = "/health"
STARTING_WAIT_S = 10.0
PROBE_INTERVAL_S = 0.2
RETRY_AFTER_S = 1
STARTING = json.dumps({"error": {"code": "starting", "message": "the API is starting: its table or model endpoint "
                                                                "does not answer yet; retry shortly"}})
# One quick try per probe: the probe itself runs again every PROBE_INTERVAL_S.
PROBE_CLIENT = Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1})


class Readiness:
    """Open once every probe has answered True in one round; it never closes again."""

    def __init__(self, probes: Sequence[Callable[[], bool]], interval_s: float = PROBE_INTERVAL_S) -> None:
        self._probes = probes
        self._interval_s = interval_s
        self._ready = threading.Event()
        self._probing = threading.Lock()
        self._next_round = 0.0

    def wait(self, timeout_s: float) -> bool:
        """Whether the API may serve: probes (one request at a time) until ready or `timeout_s` passes."""
        deadline = time.monotonic() + timeout_s
        while not self._ready.is_set():
            self._probe()
            remaining = deadline - time.monotonic()
            if self._ready.is_set() or remaining <= 0:
                break
            self._ready.wait(min(self._interval_s, remaining))
        return self._ready.is_set()

    def _probe(self) -> None:
        if not self._probing.acquire(blocking=False):
            return  # another request is probing now
        try:
            if time.monotonic() >= self._next_round:
                if all(probe() for probe in self._probes):
                    self._ready.set()
                self._next_round = time.monotonic() + self._interval_s
        finally:
            self._probing.release()


@cache
def _client(service: str) -> Any:
    """A client as the API's would be made: `chalice local` has put the stage's variables into the environment."""
    return boto3.client(service, config=PROBE_CLIENT)


def table_answers() -> bool:
    """The API's table (TABLE_NAME) is ACTIVE; with no TABLE_NAME there is nothing to wait for (the API says so)."""
    name = os.environ.get("TABLE_NAME")
    if not name:
        return True
    try:
        return _client("dynamodb").describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    except (BotoCoreError, ClientError):
        return False


def endpoint_answers() -> bool:
    """The model endpoint's server answers its health check (GET /ping, SageMaker's container contract)."""
    return answers(f"{_client('sagemaker-runtime').meta.endpoint_url}/ping", timeout_s=1.0)


READINESS = Readiness((table_answers, endpoint_answers))
_chalice_handle = ChaliceRequestHandler._generic_handle


def _handle_when_ready(handler: ChaliceRequestHandler) -> None:
    if READINESS.wait(0.0 if urlsplit(handler.path).path == HEALTH_PATH else STARTING_WAIT_S):
        _chalice_handle(handler)
        return
    handler._parse_payload()  # read the body: the kept-alive connection can carry the next request
    handler._send_http_response(503, {"Content-Type": "application/json", "Retry-After": str(RETRY_AFTER_S)},
                                STARTING)


ChaliceRequestHandler.disable_nagle_algorithm = True
for _method in ("do_GET", "do_PUT", "do_POST", "do_HEAD", "do_DELETE", "do_PATCH", "do_OPTIONS"):
    setattr(ChaliceRequestHandler, _method, _handle_when_ready)

if __name__ == "__main__":
    sys.exit(main())
