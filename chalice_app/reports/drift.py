"""`make drift`: the scheduled drift job's computation, offline, over a window of a stage's transaction log.

    python -m chalice_app.reports.drift --stage local --baseline artifacts/model/drift_baseline.json [--hours 24]

The Lambda's own code plus `token_length`, which needs the tokenizer the Lambda does not ship (docs/drift.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from chalice_app.chalicelib import transactions
from chalice_app.chalicelib.drift import RUNTIME_FEATURES, DriftReport, DriftThresholds, Extractor, Observation
from chalice_app.chalicelib.drift_baselines import S3_SCHEME
from chalice_app.chalicelib.drift_monitor import DriftRun, measure
from chalice_app.reports.stage_table import ReportError, use_stage
from devkit.repo import REPO_ROOT

TOKENIZER_FILE = "tokenizer.json"
DEFAULT_MAX_RECORDS = 200_000


def token_length(tokenizer_file: Path) -> Extractor:
    """Untruncated token count, as training_jobs/drift_baseline.py measures it for the baseline."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(observation: Observation) -> int:
        return len(tokenizer.encode(observation.headline).ids)

    return count


def features(baseline: str, tokenizer: Path | None) -> dict[str, Extractor]:
    """The Lambda's features, plus token length when a tokenizer is at hand."""
    if tokenizer is None and not baseline.startswith(S3_SCHEME):
        beside = Path(baseline).parent / TOKENIZER_FILE
        tokenizer = beside if beside.is_file() else None
    if tokenizer is None:
        return dict(RUNTIME_FEATURES)
    return {**RUNTIME_FEATURES, "token_length": token_length(tokenizer)}


def plot(report: DriftReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(report.features), figsize=(4.2 * len(report.features), 3.8), squeeze=False)
    for ax, feature in zip(axes[0], report.features, strict=True):
        positions = range(len(feature.bins))
        ax.bar([p - 0.2 for p in positions], feature.baseline, width=0.4, label="baseline")
        ax.bar([p + 0.2 for p in positions], feature.window, width=0.4, label="window")
        ax.set_xticks(list(positions), feature.bins, rotation=60, ha="right", fontsize=7)
        ax.set(title=f"{feature.feature}: PSI {feature.psi:.3f} ({feature.status})", ylabel="share")
    axes[0][0].legend()
    fig.suptitle(f"model {report.model_version}: {report.samples} headlines, {report.status}; low confidence "
                 f"(top score < {report.low_confidence_threshold:g}) {report.low_confidence_share:.1%}, baseline "
                 f"{report.baseline_low_confidence_share:.1%}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(result: DriftRun, output: Path) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    json_path = output / "drift.json"
    json_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return [json_path, *(plot(r, output / f"drift-{r.model_version}.png") for r in result.reports if r.features)]


def print_summary(result: DriftRun, console: Console) -> None:
    measured = list(dict.fromkeys(f.feature for r in result.reports for f in r.features))
    table = Table(title=f"drift {result.since:%Y-%m-%d %H:%M} - {result.until:%Y-%m-%d %H:%M} UTC "
                        f"({result.records_read} transactions{', truncated' if result.truncated else ''})")
    for column in ("model version", "samples", "status", *(f"PSI {name}" for name in measured), "low conf. (base)"):
        table.add_column(column)
    for report in result.reports:
        psi = {f.feature: f"{f.psi:.3f}" for f in report.features}
        table.add_row(report.model_version, str(report.samples), report.status, *(psi.get(n, "-") for n in measured),
                      f"{report.low_confidence_share:.1%} ({report.baseline_low_confidence_share:.1%})")
    console.print(table)
    for version, reason in result.skipped.items():
        console.print(f"{version}: no baseline ({reason})")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local", help="Chalice stage whose table is read (default: local)")
    parser.add_argument("--hours", type=float, default=24.0, help="the window: the last N hours (default: 24)")
    parser.add_argument("--baseline", required=True,
                        help="a drift_baseline.json file or s3:// URI; {model_version} is replaced per version")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer.json for token_length (default: beside --baseline)")
    parser.add_argument("--min-samples", type=int, default=DriftThresholds.min_samples,
                        help=f"transactions per version before a verdict (default: {DriftThresholds.min_samples})")
    parser.add_argument("--max-records", type=int, default=DEFAULT_MAX_RECORDS)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "artifacts" / "drift")
    parser.add_argument("--local-state-dir", type=Path, default=REPO_ROOT / "artifacts" / "local",
                        help="state directory of the running `make local` (local stage only)")
    args = parser.parse_args(argv)
    if args.hours <= 0 or args.min_samples < 1 or args.max_records < 1:
        parser.error("--hours must be > 0, --min-samples and --max-records >= 1")
    if args.tokenizer is not None and not args.tokenizer.is_file():
        parser.error(f"--tokenizer {args.tokenizer}: no such file")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    until = dt.datetime.now(dt.UTC)
    try:
        use_stage(args.stage, args.local_state_dir)
        result = measure(until - dt.timedelta(hours=args.hours), until, args.baseline,
                         DriftThresholds(min_samples=args.min_samples), args.max_records,
                         features(args.baseline, args.tokenizer))
    except (ReportError, transactions.TableUnavailableError) as exc:
        print(f"drift: {exc}", file=sys.stderr)
        return 1
    paths = write_report(result, args.output)
    print_summary(result, Console())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
