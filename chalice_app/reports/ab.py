"""`make ab-report`: compare the A/B variants (endpoints) of a stage over a window of its transaction log.

    python -m chalice_app.reports.ab --stage local [--hours 24] [--control news-v3] [--output artifacts/ab]

Each variant against the control at a Bonferroni-corrected alpha; the verdict is accuracy on feedback (Fisher's
exact test), withheld until enough feedback exists (docs/ab-and-retraining.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from chalice_app.chalicelib import transactions
from chalice_app.reports.ab_render import print_summary, write_report
from chalice_app.reports.ab_stats import AbThresholds, Observation, build_report, by_endpoint
from chalice_app.reports.stage_table import ReportError, use_stage
from devkit.repo import REPO_ROOT


def load_observations(since: dt.datetime, until: dt.datetime) -> tuple[list[Observation], int]:
    """The window's transactions with an endpoint, and how many had none (no endpoint was configured)."""
    records = list(transactions.between(since, until))
    routed = [Observation.from_record(r) for r in records if r.endpoint_name]
    return routed, len(records) - len(routed)


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
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "artifacts" / "ab")
    parser.add_argument("--local-state-dir", type=Path, default=REPO_ROOT / "artifacts" / "local",
                        help="state directory of the running `make local` (local stage only)")
    args = parser.parse_args(argv)
    if args.hours <= 0 or not 0 < args.alpha < 1 or args.min_feedback < 1 or args.min_requests < 1:
        parser.error("--hours must be > 0, --alpha in (0, 1), --min-feedback and --min-requests >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    until = dt.datetime.now(dt.UTC)
    since = until - dt.timedelta(hours=args.hours)
    try:
        use_stage(args.stage, args.local_state_dir)
        observations, skipped = load_observations(since, until)
        report = build_report(observations, args.stage, since, until,
                              AbThresholds(args.alpha, args.min_feedback, args.min_requests), args.control, skipped)
    except (ReportError, transactions.TableUnavailableError) as exc:
        print(f"ab-report: {exc}", file=sys.stderr)
        return 1
    json_path, png_path = write_report(report, by_endpoint(observations), args.output)
    print_summary(report, Console(width=None if sys.stdout.isatty() else 150))
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
