"""`make chaos`: the local stack under injected faults answers with its documented statuses and loses nothing.

    python -m loadtest.chaos [--model-dir artifacts/model] [--requests 24] [--output artifacts/chaos]

One phase per fault on a fault-injecting stack of its own; a phase passes on its documented answers only, then the
unsaved records are replayed and every phase must reconcile with 0 missing (docs/load-testing.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from devkit.local_servers import NotUpError, answers, wait_until
from devkit.local_stack_state import FAKE_AWS, fake_client_arguments
from devkit.news_files import default_headlines, read_headlines
from loadtest.ledger import Ledger, classification_ids
from loadtest.reconcile import Reconciliation, reconcile_table, table_of_api
from loadtest.target_stack import REPO_ROOT, LocalStack, own_stack

TRANSACTION_TABLE = "chalice_app.ops.transaction_table"  # run from REPO_ROOT
REQUEST_TIMEOUT_S = 60.0
# The chaos stack's API gives the model 1 s per attempt (2 attempts): the timeout phase's latency exceeds it.
MODEL_READ_TIMEOUT_S = 1.0
TIMEOUT_LATENCY_MS = MODEL_READ_TIMEOUT_S * 1000 + 500
# The last request of an outage starts this long before its end, so that all the retries of its table calls fail
# too (botocore retries a refused connection to DynamoDB after at most 25 ms, then 50 ms).
OUTAGE_MARGIN_S = 1.5
BATCH_SIZE = 3
REQUEST_CYCLE = ("classify", "batch", "classify", "lookup")  # the mix of each phase, in order
UNSAVED_EVENT = "transaction_unsaved"

OK, LOOKUP_OK = "classify 200", "lookup 200"
LOOKUP_UNAVAILABLE = "lookup 503 table_unavailable"


@dataclass(frozen=True)
class Phase:
    """One fault, injected for the length of a phase, and the answers it may and must produce."""

    name: str
    fault: str
    expected: frozenset[str]  # "<classify|lookup> <status>[ <error code>]"
    required: frozenset[str]  # the fault's own answers: at least one of each must be seen
    endpoint_faults: Mapping[str, Any] = field(default_factory=dict)  # PUT to the endpoint's /_faults
    table_faults: Mapping[str, Any] = field(default_factory=dict)  # PUT to the DynamoDB proxy's /_faults
    outage: bool = False  # close the DynamoDB proxy's port for the phase (--outage-s)
    needs_unsaved: bool = False  # the API must log `transaction_unsaved` during the phase


def _codes(*outcomes: str) -> frozenset[str]:
    return frozenset(outcomes)


def _down(mode: str, aws_error: str) -> Phase:
    signature = "classify 503 model_unavailable"
    return Phase(f"endpoint down: {mode}", f"every call answered {aws_error}", _codes(signature, LOOKUP_OK),
                 _codes(signature), endpoint_faults={"down": mode})


PHASES = (
    Phase("baseline", "none", _codes(OK, LOOKUP_OK), _codes(OK, LOOKUP_OK)),
    Phase("endpoint latency", "+300 ms per prediction", _codes(OK, LOOKUP_OK), _codes(OK),
          endpoint_faults={"latency_ms": 300}),
    Phase("endpoint timeout", f"+{TIMEOUT_LATENCY_MS:g} ms, over the API's {MODEL_READ_TIMEOUT_S:g} s read timeout",
          _codes("classify 504 model_timeout", LOOKUP_OK), _codes("classify 504 model_timeout"),
          endpoint_faults={"latency_ms": TIMEOUT_LATENCY_MS}),
    Phase("endpoint errors", "half the predictions fail with 500 (ModelError)",
          _codes(OK, "classify 502 model_error", LOOKUP_OK), _codes("classify 502 model_error"),
          endpoint_faults={"error_rate": 0.5, "error_status": 500}),
    Phase("endpoint throttling", "70% of calls ThrottlingException (botocore retries once)",
          _codes(OK, "classify 429 model_throttled", LOOKUP_OK), _codes("classify 429 model_throttled"),
          endpoint_faults={"throttle_rate": 0.7}),
    _down("not-found", "400 ValidationError (endpoint deleted or being re-created)"),
    _down("not-ready", "429 ModelNotReadyException"),
    _down("unavailable", "503 ServiceUnavailable"),
    Phase("DynamoDB throttling", "90% of DynamoDB calls ProvisionedThroughputExceededException (3 attempts)",
          _codes(OK, LOOKUP_OK, LOOKUP_UNAVAILABLE), _codes(OK), table_faults={"throttle_rate": 0.9},
          needs_unsaved=True),
    Phase("DynamoDB outage", "moto's port closed (connection refused)", _codes(OK, LOOKUP_UNAVAILABLE),
          _codes(OK, LOOKUP_UNAVAILABLE), outage=True, needs_unsaved=True),
)


@dataclass
class PhaseResult:
    """What one phase saw, and its reconciliation before and after the replay."""

    phase: Phase
    ledger: Ledger
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    retry_after_missing: int = 0
    unsaved: int = 0
    before_replay: Reconciliation | None = None
    after_replay: Reconciliation | None = None

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    def problems(self) -> list[str]:
        """Every way the phase differs from what its fault should produce; empty when it passed."""
        phase, seen = self.phase, set(self.outcomes)
        found = [f"unexpected {o} x{self.outcomes[o]}" for o in sorted(seen - phase.expected)]
        found += [f"never saw {o}" for o in sorted(phase.required - seen)]
        if self.retry_after_missing:
            found.append(f"{self.retry_after_missing} answer(s) 429/503 without Retry-After")
        if phase.needs_unsaved and not self.unsaved:
            found.append(f"no {UNSAVED_EVENT} event while the table failed")
        if self.after_replay is None or not self.after_replay.ok:
            found.append(f"not reconciled: {self.after_replay.summary() if self.after_replay else 'no table read'}")
        return found

    def as_dict(self) -> dict[str, Any]:
        return {"phase": self.phase.name, "fault": self.phase.fault, "run_id": self.ledger.run_id,
                "requests": self.requests, "outcomes": dict(sorted(self.outcomes.items())),
                "expected": sorted(self.phase.expected), "required": sorted(self.phase.required),
                "p50_ms": self.p50_ms(), "unsaved": self.unsaved,
                "before_replay": self.before_replay.as_dict() if self.before_replay else None,
                "after_replay": self.after_replay.as_dict() if self.after_replay else None,
                "problems": self.problems()}

    def p50_ms(self) -> float | None:
        return round(statistics.median(self.latencies_ms), 1) if self.latencies_ms else None


# --- HTTP ---------------------------------------------------------------------------------------------------------

def call(method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None,
         timeout: float = REQUEST_TIMEOUT_S) -> tuple[int, Mapping[str, str], Any]:
    """One request on a connection of its own; status 0 when no answer came."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, _json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, _json(error.read())
    except (urllib.error.URLError, OSError):
        return 0, {}, None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def outcome(kind: str, status: int, body: Any) -> str:
    """`classify 200`, `classify 503 model_unavailable`, `lookup 0` (no answer): how the table counts answers."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return f"{kind} {status}" + (f" {code}" if status >= 400 and code else "")


# --- traffic ------------------------------------------------------------------------------------------------------

class Traffic:
    """The requests of one phase, sent by `users` threads until the plan is done or the deadline passes."""

    def __init__(self, api_url: str, headlines: Iterator[str], known_id: str | None) -> None:
        self.api_url = api_url
        self.known_id = known_id
        self._headlines = headlines
        self._lock = threading.Lock()

    def _take(self, count: int) -> list[str]:
        with self._lock:
            return list(itertools.islice(self._headlines, count))

    def run(self, result: PhaseResult, requests: int, users: int, deadline: float) -> None:
        plan = iter(itertools.islice(itertools.cycle(REQUEST_CYCLE), requests))

        def worker() -> None:
            while time.monotonic() < deadline:
                with self._lock:
                    kind = next(plan, None)
                if kind is None:
                    return
                self._send(kind, result)

        with ThreadPoolExecutor(users) as pool:
            for future in [pool.submit(worker) for _ in range(users)]:
                future.result()

    def _send(self, kind: str, result: PhaseResult) -> None:
        if kind == "lookup" and self.known_id is None:
            kind = "classify"  # the baseline's first look-up: nothing stored yet to look up
        run_header = {"X-Run-Id": result.ledger.run_id}
        started = time.perf_counter()
        if kind == "lookup":
            status, headers, body = call("GET", f"{self.api_url}/transactions/{self.known_id}")
            headlines = 0
        elif kind == "batch":
            batch = self._take(BATCH_SIZE)
            status, headers, body = call("POST", f"{self.api_url}/classify/batch", {"headlines": batch}, run_header)
            headlines = len(batch)
        else:
            status, headers, body = call("POST", f"{self.api_url}/classify", {"headline": self._take(1)[0]},
                                         run_header)
            headlines = 1
        elapsed_ms = (time.perf_counter() - started) * 1000
        with self._lock:
            result.outcomes[outcome("lookup" if kind == "lookup" else "classify", status, body)] += 1
            if status in (429, 503) and not headers.get("Retry-After", "").isdigit():
                result.retry_after_missing += 1
            if headlines:
                result.latencies_ms.append(elapsed_ms)
                result.ledger.record(headlines, status, classification_ids(status, body))
                if self.known_id is None and status == 200:
                    self.known_id = classification_ids(status, body)[0]


# --- the stack and its faults -------------------------------------------------------------------------------------

def set_faults(url: str, faults: Mapping[str, Any]) -> None:
    """PUT the faults to a `/_faults` route (an empty mapping clears them)."""
    status, _, body = call("PUT", f"{url}/_faults", dict(faults))
    if status != 200:
        raise SystemExit(f"PUT {url}/_faults answered {status}: {body}")


def begin_outage(dynamodb_url: str, seconds: float) -> None:
    """Ask the DynamoDB proxy for an outage and return once its port refuses connections."""
    status, _, body = call("POST", f"{dynamodb_url}/_faults/outage", {"seconds": seconds})
    if status != 202:
        raise SystemExit(f"POST {dynamodb_url}/_faults/outage answered {status}: {body}")
    wait_for_proxy(dynamodb_url, answering=False, deadline=time.monotonic() + seconds)


def wait_for_proxy(url: str, answering: bool, deadline: float) -> None:
    """Until the DynamoDB proxy answers (after an outage) or refuses (as one begins)."""
    try:
        wait_until(lambda: answers(f"{url}/_faults") == answering, deadline, poll_s=0.05)
    except NotUpError:
        raise SystemExit(f"{url} did not {'come back after' if answering else 'begin'} its outage") from None


# --- the run ------------------------------------------------------------------------------------------------------

def run_phase(phase: Phase, stack: LocalStack, traffic: Traffic, run_id: str, requests: int, users: int,
              outage_s: float) -> PhaseResult:
    result = PhaseResult(phase, Ledger(run_id))
    set_faults(stack.endpoint_url, phase.endpoint_faults)
    set_faults(stack.dynamodb_url, phase.table_faults)
    deadline = math.inf
    if phase.outage:
        begin_outage(stack.dynamodb_url, outage_s)
        # The last request starts early enough for all its table retries to fail inside the outage too.
        deadline = time.monotonic() + outage_s - OUTAGE_MARGIN_S
    try:
        traffic.run(result, requests, users, deadline)
    finally:
        result.ledger.finish()
        if phase.outage:
            wait_for_proxy(stack.dynamodb_url, answering=True, deadline=time.monotonic() + outage_s + 30)
        set_faults(stack.endpoint_url, {})
        set_faults(stack.dynamodb_url, {})
    return result


def unsaved_run_ids(log_path: Path) -> Counter[str]:
    """How many `transaction_unsaved` events the API's log holds per run id."""
    counts: Counter[str] = Counter()
    for line in log_path.read_text(errors="replace").splitlines():
        if UNSAVED_EVENT not in line:
            continue
        event = _json(line[line.find("{"):].encode())
        if isinstance(event, dict) and event.get("message") == UNSAVED_EVENT:
            counts[str((event.get("record") or {}).get("run_id"))] += 1
    return counts


def stack_aws_env(stack: LocalStack) -> dict[str, str]:
    """Fake credentials and the stack's DynamoDB: never the caller's AWS account."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return {**env, **FAKE_AWS, "AWS_ENDPOINT_URL_DYNAMODB": stack.dynamodb_url}


def replay_unsaved(stack: LocalStack, api_log: Path) -> str:
    """`transaction_table replay-unsaved --log-file` on the API's log, against the stack's table; its summary."""
    completed = subprocess.run([sys.executable, "-m", TRANSACTION_TABLE, "--stage", "local", "replay-unsaved",
                                "--log-file", str(api_log)], cwd=REPO_ROOT, env=stack_aws_env(stack),
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"replay-unsaved failed:\n{completed.stdout}{completed.stderr}")
    return completed.stdout.strip()


def reconcile_phases(results: list[PhaseResult], stack: LocalStack) -> list[Reconciliation]:
    """Each phase's ledger against the stack's table (read through the proxy, its faults cleared)."""
    client = boto3.client("dynamodb", endpoint_url=stack.dynamodb_url, **fake_client_arguments())
    table = table_of_api(stack.api_url)
    return [reconcile_table(result.ledger, table, client) for result in results]


def run_chaos(stack: LocalStack, headlines: list[str], requests: int, users: int, outage_s: float,
              output: Path) -> tuple[list[PhaseResult], str]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    traffic = Traffic(stack.api_url, itertools.cycle(headlines), known_id=None)
    results = []
    for phase in PHASES:
        run_id = f"chaos-{stamp}-{phase.name.replace(':', '').replace(' ', '-').lower()}"
        print(f"phase {phase.name}: {phase.fault}", flush=True)
        result = run_phase(phase, stack, traffic, run_id, requests, users, outage_s)
        print(f"  {_statuses(result.outcomes)}", flush=True)
        result.ledger.save(output / "ledgers" / f"{run_id}.json")
        results.append(result)
    api_log = stack.api_log
    assert api_log is not None, "own_stack starts the stack with --api-log"
    unsaved = unsaved_run_ids(api_log)
    for result in results:
        result.unsaved = unsaved[result.ledger.run_id]
    for result, before in zip(results, reconcile_phases(results, stack), strict=True):
        result.before_replay = before
    replayed = replay_unsaved(stack, api_log)
    for result, after in zip(results, reconcile_phases(results, stack), strict=True):
        result.after_replay = after
    return results, replayed


# --- the report ---------------------------------------------------------------------------------------------------

def _statuses(outcomes: Counter[str]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in sorted(outcomes.items()))


def report_table(results: list[PhaseResult]) -> str:
    """One Markdown row per phase: what was sent, what came back, and what the table holds."""
    rows = ["| phase | fault | requests | statuses seen | expected | unsaved | sent / recorded | "
            "missing before / after replay | p50 ms | result |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        before, after = r.before_replay, r.after_replay
        recorded = f"{after.sent} / {after.recorded}" if after else "?"
        missing = f"{before.missing if before else '?'} / {after.missing if after else '?'}"
        verdict = "ok" if not r.problems() else "FAILED: " + "; ".join(r.problems())
        rows.append(f"| {r.phase.name} | {r.phase.fault} | {r.requests} | {_statuses(r.outcomes)} | "
                    f"{', '.join(sorted(r.phase.expected))} | {r.unsaved} | {recorded} | {missing} | "
                    f"{r.p50_ms()} | {verdict} |")
    return "\n".join(rows)


def write_report(results: list[PhaseResult], replayed: str, output: Path) -> bool:
    passed = not any(r.problems() for r in results)
    table = report_table(results)
    summary = f"replay: {replayed}\nchaos run: {'PASSED' if passed else 'FAILED'}"
    (output / "chaos.md").write_text(f"# Chaos run\n\n{table}\n\n{summary}\n")
    (output / "chaos.json").write_text(json.dumps({"passed": passed, "replay": replayed,
                                                   "phases": [r.as_dict() for r in results]}, indent=1) + "\n")
    print(f"\n{table}\n\n{summary}\nwrote {output / 'chaos.md'} and {output / 'chaos.json'}")
    return passed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_headlines(),
                        help="headlines: a TSV with a `title` column (default: the NLP-100 test split)")
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "artifacts" / "model")
    parser.add_argument("--runtime", default="auto", help="model runtime of the endpoint")
    parser.add_argument("--requests", type=int, default=24, help="requests per phase (default 24)")
    parser.add_argument("--users", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--outage-s", type=float, default=8.0, help="length of the DynamoDB outage (default 8)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "artifacts" / "chaos")
    args = parser.parse_args(argv)
    if args.requests < len(REQUEST_CYCLE) or args.users < 1 or not OUTAGE_MARGIN_S + 1 <= args.outage_s <= 600:
        parser.error(f"--requests must be >= {len(REQUEST_CYCLE)}, --users >= 1, "
                     f"--outage-s from {OUTAGE_MARGIN_S + 1:g} to 600")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    headlines = read_headlines(args.data)
    args.output.mkdir(parents=True, exist_ok=True)
    with own_stack(args.model_dir, args.runtime, args.output / "stack", extra_args=["--faults"],
                   env={"MODEL_READ_TIMEOUT_SECONDS": f"{MODEL_READ_TIMEOUT_S:g}"}) as stack:
        results, replayed = run_chaos(stack, headlines, args.requests, args.users, args.outage_s, args.output)
    sys.exit(0 if write_report(results, replayed, args.output) else 1)


if __name__ == "__main__":
    main()
