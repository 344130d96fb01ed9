"""The local stack's table as its tests use it: its DynamoDB stand-in started as the stack starts it, and records
written and found through the API's own code (chalicelib.transactions), pointed at the stand-in by the caller's
environment (TABLE_NAME, AWS_ENDPOINT_URL_DYNAMODB and fake credentials)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devkit.local_servers import unused_port
from devkit.local_stack_state import DATABASE_VARIABLE, FAKE_AWS
from tests.support import REPO_ROOT


class LocalDynamoDB:
    """`python -m local_stack.dynamodb` on a database, as the stack starts it (or another moto command), on
    `port` (a new free one for each restart)."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.port = unused_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, module: str = "local_stack.dynamodb", env: dict[str, str] | None = None) -> None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **FAKE_AWS,
               DATABASE_VARIABLE: str(self.database), **(env or {})}
        self.process = subprocess.Popen([sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(self.port)],
                                        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "moto exited"
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("moto did not start")

    def stop(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(30)


def write_records(count: int, start: int = 0) -> list[str]:
    """`count` classified headlines, one PutItem each, as the API writes them; their request ids."""
    from chalicelib import transactions

    ids = []
    for i in range(start, start + count):
        outcome = transactions.Outcome(request_id=transactions.new_request_id(), headline=f"Headline {i}",
                                       latency_ms=5.0, label="Business", scores={"Business": 1.0}, model_version="v1")
        record = transactions.build_record(outcome, dt.datetime.now(dt.UTC), "news-classifier", None)
        assert transactions.save([record])
        ids.append(outcome.request_id)
    return ids


def found(ids: list[str]) -> list[str]:
    """The ids whose record the table holds."""
    from chalicelib import transactions
    from chalicelib.errors import ApiError

    present = []
    for request_id in ids:
        try:
            transactions.find(request_id)
        except ApiError:
            continue
        present.append(request_id)
    return present
