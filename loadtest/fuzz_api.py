"""`make fuzz`: property-based fuzzing of the API from chalice_app/openapi.yaml with schemathesis.

    python -m loadtest.fuzz_api [--model-dir artifacts/model] [--url URL] [--output artifacts/fuzz]

A stack of its own unless --url names one; exit code 1 on a failed check, an errored operation or too few cases
(docs/load-testing.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from devkit.repo import REPO_ROOT
from loadtest.target_stack import own_stack

OPENAPI = REPO_ROOT / "chalice_app" / "openapi.yaml"
CONFIG = Path(__file__).resolve().with_name("schemathesis.toml")
ST_BIN = Path(sys.executable).with_name("st")
JUNIT_FILE, REPORT_FILE = "junit.xml", "report.json"
# One worker: the 2 cores are shared with the API and the model anyway, and with 2 workers a run here broke on a
# Hypothesis-internal error ("AST constructor recursion depth mismatch", in its lambda introspection).
WORKERS = 1


def st_command(url: str, output: Path, max_examples: int | None) -> list[str]:
    command = [str(ST_BIN), "--config-file", str(CONFIG), "run", str(OPENAPI), "--url", url,
               "--workers", str(WORKERS), "--report", "junit,json",
               "--report-junit-path", str(output / JUNIT_FILE), "--report-json-path", str(output / REPORT_FILE),
               "--no-color"]
    return command if max_examples is None else [*command, "--max-examples", str(max_examples)]


def run_schemathesis(url: str, output: Path, max_examples: int | None) -> None:
    """`st run` prints its own progress and failures; its exit code is judged from the JSON report."""
    output.mkdir(parents=True, exist_ok=True)
    for stale in (JUNIT_FILE, REPORT_FILE):
        (output / stale).unlink(missing_ok=True)
    subprocess.run(st_command(url, output, max_examples), cwd=output, check=False)
    if not (output / REPORT_FILE).is_file():
        raise SystemExit(f"schemathesis wrote no report into {output}; see its output above")


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers that matter from schemathesis' JSON report."""
    cases = report["test_cases"]
    return {
        "seed": report["seed"],
        "running_time_s": round(report["running_time"], 1),
        "operations_tested": report["operations"]["tested"],
        "operations_errored": report["operations"]["errored"],
        "phases": {name: phase["status"] for name, phase in report["phases"].items()},
        "cases": cases["generated"],
        "cases_with_failures": cases["with_failures"],
        "unique_failures": cases["unique_failures"],
        "errored_cases": cases["errored"],
        "failures": report["failures"],
        "errors": report["errors"],
    }


def problems(summary: dict[str, Any], min_cases: int) -> list[str]:
    found = []
    if summary["unique_failures"] or summary["failures"]:
        found.append(f"{summary['unique_failures']} unique failure(s) in {summary['cases_with_failures']} case(s)")
    if summary["operations_errored"] or summary["errored_cases"] or summary["errors"]:
        found.append(f"{summary['operations_errored']} operation(s) and {summary['errored_cases']} case(s) errored")
    if summary["cases"] < min_cases:
        found.append(f"only {summary['cases']} test cases ran; at least {min_cases} are required")
    return found


def markdown(summary: dict[str, Any], found: list[str]) -> str:
    phases = ", ".join(f"{name} {status}" for name, status in summary["phases"].items())
    lines = [
        "# API fuzzing (schemathesis)",
        "",
        f"- test cases: {summary['cases']} ({summary['operations_tested']} operations, seed {summary['seed']}, "
        f"{summary['running_time_s']} s)",
        f"- failures: {summary['unique_failures']}; errored cases: {summary['errored_cases']}",
        f"- phases: {phases}",
        f"- verdict: {'FAILED: ' + '; '.join(found) if found else 'passed'}",
        "",
        f"Details: {JUNIT_FILE} (JUnit XML) and {REPORT_FILE} (schemathesis' JSON report).",
    ]
    return "\n".join(lines) + "\n"


def write_summary(summary: dict[str, Any], found: list[str], output: Path) -> None:
    (output / "summary.json").write_text(json.dumps({**summary, "problems": found}, indent=2) + "\n")
    (output / "summary.md").write_text(markdown(summary, found))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "artifacts" / "model")
    parser.add_argument("--runtime", default="onnx-int8", help="model runtime of the local endpoint")
    parser.add_argument("--url", help="fuzz this running API instead of starting the local stack")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "artifacts" / "fuzz")
    parser.add_argument("--max-examples", type=int, help="per operation; default: loadtest/schemathesis.toml")
    parser.add_argument("--min-cases", type=int, default=1000, help="fail when fewer test cases ran")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    output = args.output.resolve()
    if args.url:
        run_schemathesis(args.url, output, args.max_examples)
    else:
        with own_stack(args.model_dir, args.runtime, output / "stack") as stack:
            run_schemathesis(stack.api_url, output, args.max_examples)
    summary = summarise(json.loads((output / REPORT_FILE).read_text()))
    found = problems(summary, args.min_cases)
    write_summary(summary, found, output)
    print(markdown(summary, found), end="")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
