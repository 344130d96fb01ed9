"""`make ab-report`: compare the A/B variants (endpoints) of a stage over a window of its transaction log.

    python -m chalice_app.reports.ab --stage local [--hours 24] [--control news-v3] [--replay 500] [--output DIR]

Each variant against the control at a Bonferroni-corrected alpha; the verdict is accuracy on feedback (Fisher's
exact test), withheld until enough feedback exists (docs/ab-and-retraining.md).

The replay (--replay N, on by default) sends the window's reviewed headlines and a sample of up to N of its distinct
headlines to every variant's endpoint, so the versions are compared on the same headlines: agreement, Cohen's kappa,
and accuracy against the operators' labels. It calls InvokeEndpoint (on dev and prod with your AWS credentials, at
the endpoints' usual price: about N + reviewed headlines per variant, 32 per call); --replay 0 makes no call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from chalice_app.chalicelib import transactions
from chalice_app.chalicelib.transactions import TransactionRecord
from chalice_app.reports import ab_replay
from chalice_app.reports.ab_render import print_summary, write_report
from chalice_app.reports.ab_stats import AbThresholds, Observation, Report, build_report, by_endpoint
from chalice_app.reports.stage_table import ReportError, use_stage, use_stage_endpoints
from devkit.repo import REPO_ROOT


def observations_of(records: Sequence[TransactionRecord]) -> tuple[list[Observation], int]:
    """The window's transactions with an endpoint, and how many had none (no endpoint was configured)."""
    routed = [Observation.from_record(r) for r in records if r.endpoint_name]
    return routed, len(records) - len(routed)


def add_replay(report: Report, records: Sequence[TransactionRecord], size: int, stage: str,
               local_state_dir: Path) -> None:
    """The same headlines to every variant, when there are variants to compare and a replay was asked for; without
    an endpoint to send them to, the report still writes and its replay says why."""
    if not (size and report.control is not None and report.comparisons):
        return
    try:
        use_stage_endpoints(stage, local_state_dir)
    except ReportError as exc:
        report.replay = ab_replay.not_sent(report.control, list(report.variants), size, str(exc))
        return
    report.replay = ab_replay.replay([ab_replay.Logged.from_record(r) for r in records], report.control,
                                     list(report.variants), size)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local", help="Chalice stage whose table is read (default: local)")
    parser.add_argument("--hours", type=float, default=24.0, help="the window: the last N hours (default: 24)")
    parser.add_argument("--control", help="the variant the others are compared with (default: most requests)")
    parser.add_argument("--alpha", type=float, default=AbThresholds.alpha, help="significance level (default: 0.05)")
    parser.add_argument("--min-feedback", type=int, default=AbThresholds.min_feedback,
                        help="labelled transactions per variant before accuracy is compared (default: 30)")
    parser.add_argument("--min-requests", type=int, default=AbThresholds.min_requests,
                        help="requests per variant before errors, latency and labels are compared (default: 30)")
    parser.add_argument("--replay", type=int, default=ab_replay.DEFAULT_SIZE, metavar="N",
                        help="send the window's reviewed headlines and up to N of its distinct headlines to every "
                             "variant's endpoint and compare the answers; this calls InvokeEndpoint (billed on AWS); "
                             f"0: no replay (default: {ab_replay.DEFAULT_SIZE})")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "artifacts" / "ab")
    parser.add_argument("--local-state-dir", type=Path, default=REPO_ROOT / "artifacts" / "local",
                        help="state directory of the running `make local` (local stage only)")
    args = parser.parse_args(argv)
    if args.hours <= 0 or not 0 < args.alpha < 1 or args.min_feedback < 1 or args.min_requests < 1 or args.replay < 0:
        parser.error("--hours must be > 0, --alpha in (0, 1), --min-feedback and --min-requests >= 1, --replay >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    until = dt.datetime.now(dt.UTC)
    since = until - dt.timedelta(hours=args.hours)
    try:
        use_stage(args.stage, args.local_state_dir)
        records = list(transactions.between(since, until))
        observations, skipped = observations_of(records)
        report = build_report(observations, args.stage, since, until,
                              AbThresholds(args.alpha, args.min_feedback, args.min_requests), args.control, skipped)
        add_replay(report, records, args.replay, args.stage, args.local_state_dir)
    except (ReportError, transactions.TableUnavailableError) as exc:
        print(f"ab-report: {exc}", file=sys.stderr)
        return 1
    json_path, png_path = write_report(report, by_endpoint(observations), args.output)
    print_summary(report, Console(width=None if sys.stdout.isatty() else 150))
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
