"""Operate the transaction table: create it, and replay records the API could not write.

    python -m chalice_app.ops.transaction_table --stage local create-table | replay-unsaved [--log-file api.log]

The stage's variables from `.chalice/config.json` apply unless already set in the environment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import boto3

from chalice_app.chalicelib import transactions
from devkit.stages import function_name, stage_environment


def unsaved_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The records of `transaction_unsaved` events among log lines; other lines are skipped."""
    for line in lines:
        start = line.find("{")  # console and CloudWatch lines may carry a prefix before the JSON
        if start < 0:
            continue
        try:
            event = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("message") == transactions.UNSAVED_EVENT \
                and isinstance(event.get("record"), dict):
            yield event["record"]


def cloudwatch_lines(log_group: str, since: dt.datetime) -> Iterator[str]:
    """Messages of the log group's events that mention `transaction_unsaved`, oldest first."""
    paginator = boto3.client("logs").get_paginator("filter_log_events")
    pages = paginator.paginate(logGroupName=log_group, startTime=int(since.timestamp() * 1000),
                               filterPattern=f'"{transactions.UNSAVED_EVENT}"')
    for page in pages:
        for event in page["events"]:
            yield event["message"]


def _log_lines(args: argparse.Namespace) -> Iterable[str]:
    if args.log_file is not None:
        return sys.stdin if str(args.log_file) == "-" else args.log_file.read_text().splitlines()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=args.since_hours)
    return cloudwatch_lines(args.log_group or f"/aws/lambda/{function_name(args.stage)}", since)


def create_table(args: argparse.Namespace) -> None:
    created = transactions.create_table()
    print(f"table {os.environ['TABLE_NAME']}: {'created' if created else 'already exists'}")


def replay_unsaved(args: argparse.Namespace) -> None:
    report = transactions.replay(unsaved_records(_log_lines(args)))
    print(f"table {os.environ['TABLE_NAME']}: wrote {report.written} record(s), "
          f"{report.already_present} already present")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local", help="Chalice stage whose variables apply (default: local)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create-table", help="create the table if missing").set_defaults(run=create_table)
    replay = commands.add_parser("replay-unsaved", help="write `transaction_unsaved` log events into the table")
    source = replay.add_mutually_exclusive_group()
    source.add_argument("--log-file", type=Path, help="a file of log lines (`-` for stdin)")
    source.add_argument("--log-group", help="a CloudWatch log group (default: the stage's API function)")
    replay.add_argument("--since-hours", type=float, default=24.0, help="CloudWatch window (default: 24)")
    replay.set_defaults(run=replay_unsaved)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for name, value in stage_environment(args.stage).items():
        os.environ.setdefault(name, value)
    args.run(args)


if __name__ == "__main__":
    main()
