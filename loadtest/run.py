"""`make loadtest`: a bounded, headless Locust run with its reports, threshold checks and reconciliation.

    python -m loadtest.run [--users 32] [--duration 60] [--shape steady|step|spike] [--mode api|endpoint] [--host URL]

Exit code 1 when a threshold is missed or, in API mode, a headline sent has no record or an extra one
(docs/load-testing.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psutil
from botocore.exceptions import BotoCoreError, ClientError

from devkit.news_files import default_headlines
from loadtest.ledger import Ledger
from loadtest.profiles import DEFAULT_USER_RATE, PROFILE_NAMES, STEADY
from loadtest.reconcile import Reconciliation, reconcile_table, table_of_api
from loadtest.report import plot_history, print_summary
from loadtest.target_stack import REPO_ROOT, LocalStack, own_stack, running_stack
from loadtest.thresholds import DEFAULT_FILE, check, load_thresholds, read_run_stats

LOCUSTFILES = {"api": REPO_ROOT / "loadtest" / "locustfile.py",
               "endpoint": REPO_ROOT / "loadtest" / "endpoint_locustfile.py"}
SHAPE_FILE = REPO_ROOT / "loadtest" / "shape.py"
CSV_PREFIX = "locust"
FINAL_STATS = "final_stats.json"
STOP_TIMEOUT_S = 10  # users finish the request in flight when the time is up
LOCUST_GRACE_S = 120  # beyond the run time: start-up, stopping, writing reports
LOCAL_AWS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
UNSAVED_EVENT = '"message":"transaction_unsaved"'


@dataclass(frozen=True)
class Target:
    """What the run loads and where its records are."""

    host: str  # Locust's --host
    api_url: str | None  # None in endpoint mode against a remote endpoint
    local: LocalStack | None = None  # the local stack, when the target is one
    services: dict[str, int] = field(default_factory=dict)  # processes whose CPU the report shows


def _target_of(stack: LocalStack, mode: str) -> Target:
    host = stack.api_url if mode == "api" else stack.endpoint_url
    return Target(host, stack.api_url, stack, stack.process_ids)


@contextmanager
def target(args: argparse.Namespace) -> Iterator[Target]:
    if args.host:
        yield Target(args.host, args.host if args.mode == "api" else None)
        return
    stack = None if args.own_stack else running_stack()
    if stack is not None:
        print(f"Using the running `make local` stack at {stack.api_url}", flush=True)
        yield _target_of(stack, args.mode)
        return
    print(f"Starting a local stack ({args.model_dir}, runtime {args.runtime}); logs in {args.output / 'stack'}",
          flush=True)
    with own_stack(args.model_dir, args.runtime, args.output / "stack") as started:
        yield _target_of(started, args.mode)


def locust_command(args: argparse.Namespace, host: str, run_id: str) -> list[str]:
    files = [str(LOCUSTFILES[args.mode])] + ([str(SHAPE_FILE)] if args.shape != STEADY else [])
    prefix = args.output / CSV_PREFIX
    command = [sys.executable, "-m", "locust", "-f", ",".join(files), "--headless", "--host", host,
               "--users", str(args.users), "--spawn-rate", str(args.spawn_rate or args.users),
               "--run-time", f"{args.duration}s", "--stop-timeout", str(STOP_TIMEOUT_S), "--only-summary",
               "--csv", str(prefix), "--html", str(prefix.with_suffix(".html")), "--exit-code-on-error", "0",
               "--headlines", str(args.data), "--user-rate", str(args.user_rate),
               "--final-stats", str(args.output / FINAL_STATS)]
    if args.shape != STEADY:
        command += ["--shape", args.shape]
    if args.mode == "api":
        command += ["--run-id", run_id, "--ledger", str(args.output / "ledger.json")]
    elif args.endpoint_name:
        command += ["--endpoint-name", args.endpoint_name]
    return command


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU time so far of each process and its descendants."""
    used: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            process = psutil.Process(pid)
            used[name] = sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])
        except psutil.Error:
            continue
    return used


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_locust(args: argparse.Namespace, chosen: Target, run_id: str) -> tuple[int, dict[str, float]]:
    """Locust's exit code, and the CPU cores each process used on average during the run."""
    env = {**os.environ, **(LOCAL_AWS if chosen.local else {})}
    before, locust_before = cpu_seconds(chosen.services), _children_cpu_s()
    started = dt.datetime.now(dt.UTC)
    try:
        code = subprocess.run(locust_command(args, chosen.host, run_id), cwd=REPO_ROOT, env=env,
                              timeout=args.duration + LOCUST_GRACE_S).returncode
    except subprocess.TimeoutExpired:
        print(f"Locust did not stop within {args.duration + LOCUST_GRACE_S} s: killed", file=sys.stderr)
        code = 1
    elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds()
    after = cpu_seconds(chosen.services)
    cores = {"locust": (_children_cpu_s() - locust_before) / elapsed}
    cores.update({name: (after[name] - before[name]) / elapsed for name in after if name in before})
    return code, cores


def reconcile_run(ledger: Ledger, chosen: Target) -> Reconciliation:
    if chosen.api_url is None:
        raise ValueError("reconciliation needs the API (its /health/details names the table)")
    table = table_of_api(chosen.api_url)
    if chosen.local is None:
        return reconcile_table(ledger, table)  # DynamoDB as boto3 finds it from the environment
    client = boto3.client("dynamodb", endpoint_url=chosen.local.dynamodb_url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    return reconcile_table(ledger, table, client)


def unsaved_count(api_log: Path | None) -> int | None:
    """How many records the API logged as `transaction_unsaved` (None: its log is not in a file)."""
    if api_log is None or not api_log.is_file():
        return None
    with open(api_log, errors="replace") as lines:
        return sum(UNSAVED_EVENT in line for line in lines)


def summarise(args: argparse.Namespace, run_id: str, chosen: Target, cores: dict[str, float]) -> dict[str, Any]:
    ledger = Ledger.load(args.output / "ledger.json") if args.mode == "api" else None
    stats = read_run_stats(args.output / FINAL_STATS, ledger)
    profile = "endpoint" if args.mode == "endpoint" else args.shape
    checks = check(load_thresholds(args.thresholds, profile), stats)
    reconciliation = reconcile_run(ledger, chosen) if ledger is not None else None
    if reconciliation is not None:
        (args.output / "reconciliation.json").write_text(json.dumps(reconciliation.as_dict(), indent=1) + "\n")
    return {
        "run_id": run_id if args.mode == "api" else None, "mode": args.mode, "profile": args.shape,
        "users": args.users, "duration_s": args.duration, "user_rate": args.user_rate, "host": chosen.host,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "requests": stats.requests, "failures": stats.failures, "failure_ratio": stats.failure_ratio,
        "requests_per_s": stats.requests_per_s, "classifications_per_s": stats.classifications_per_s,
        "p50_ms": stats.p50_ms, "p95_ms": stats.p95_ms, "p99_ms": stats.p99_ms,
        "reconciliation": None if reconciliation is None else {
            k: v for k, v in reconciliation.as_dict().items() if not k.endswith("_ids")},
        "unsaved_logged": unsaved_count(chosen.local.api_log if chosen.local else None),
        "thresholds": [asdict(c) for c in checks],
        "cpu_cores": {name: round(value, 3) for name, value in cores.items()},
        "passed": all(c.passed for c in checks) and (reconciliation is None or reconciliation.ok),
    }


def run(args: argparse.Namespace) -> int:
    args.output.mkdir(parents=True, exist_ok=True)
    for stale in ("ledger.json", FINAL_STATS, "reconciliation.json", "summary.json"):
        (args.output / stale).unlink(missing_ok=True)
    run_id = f"loadtest-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    with target(args) as chosen:
        code, cores = run_locust(args, chosen, run_id)
        if code != 0:
            print(f"Locust exited with code {code}", file=sys.stderr)
            return 1
        try:
            summary = summarise(args, run_id, chosen, cores)
        except (ValueError, OSError, BotoCoreError, ClientError) as exc:
            print(f"loadtest: {exc}", file=sys.stderr)
            return 1
    plot_history(args.output / f"{CSV_PREFIX}_stats_history.csv", args.output / "latency.png",
                 f"{args.mode}, {args.shape}, {args.users} users: latency and throughput over time")
    (args.output / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print_summary(summary)
    if summary["unsaved_logged"]:
        print(f"{summary['unsaved_logged']} record(s) were logged as transaction_unsaved: write them back with "
              "`python -m chalice_app.ops.transaction_table replay-unsaved --log-file <api.log>`, then run "
              "`python -m loadtest.reconcile` again.")
    print(f"Reports in {args.output}: locust.html, latency.png, summary.json")
    return 0 if summary["passed"] else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=sorted(LOCUSTFILES), default="api",
                        help="api: the whole API; endpoint: InvokeEndpoint on the model endpoint alone")
    parser.add_argument("--shape", choices=PROFILE_NAMES, default=STEADY, help="load profile over the run")
    parser.add_argument("--users", type=int, default=32, help="users (the peak, for step and spike)")
    parser.add_argument("--duration", type=int, default=60, help="seconds")
    parser.add_argument("--spawn-rate", type=float, help="users started per second (default: all in one second)")
    parser.add_argument("--user-rate", type=float, default=DEFAULT_USER_RATE,
                        help="tasks per second each user aims at; 0: back to back")
    parser.add_argument("--data", type=Path, default=default_headlines(), help="TSV of headlines to send")
    parser.add_argument("--host", help="a running target instead of the local stack (deployed API, or in endpoint "
                                       "mode a SageMaker Runtime URL)")
    parser.add_argument("--endpoint-name", help="endpoint mode: the endpoint to invoke (default: the local one)")
    parser.add_argument("--own-stack", action="store_true", help="start a local stack even if `make local` runs")
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "artifacts" / "model")
    parser.add_argument("--runtime", default="onnx-int8", help="model runtime of a stack this run starts")
    parser.add_argument("--thresholds", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "artifacts" / "loadtest")
    args = parser.parse_args(argv)
    for name in ("data", "model_dir", "thresholds", "output"):  # Locust runs from the repository's root
        setattr(args, name, getattr(args, name).resolve())
    if args.users < 1 or args.duration < 1 or (args.spawn_rate is not None and args.spawn_rate <= 0) \
            or args.user_rate < 0:
        parser.error("--users and --duration must be >= 1, --spawn-rate > 0, --user-rate >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(parse_args(argv)))


if __name__ == "__main__":
    main()
