"""The report of a load run: latency percentiles and throughput over time (PNG), and the summary table.

The PNG is drawn from Locust's `<prefix>_stats_history.csv` (one all-routes row per second; its percentiles
cover Locust's recent window, so the curves show how latency moves during the run).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # no pyplot: a file is drawn, never a window
from rich.console import Console
from rich.table import Table

PERCENTILES = ("50%", "95%", "99%")


def _number(value: str) -> float:
    return math.nan if value in ("", "N/A") else float(value)


def read_history(history_csv: Path) -> dict[str, list[float]]:
    """Columns of the history's all-routes rows; `t` is seconds since the first row."""
    with open(history_csv, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["Name"] == "Aggregated"]
    if not rows:
        raise ValueError(f"{history_csv}: no 'Aggregated' rows; did Locust run with --csv?")
    start = int(rows[0]["Timestamp"])
    columns = {"t": [float(int(r["Timestamp"]) - start) for r in rows]}
    for name in ("User Count", "Requests/s", "Failures/s", *PERCENTILES):
        columns[name] = [_number(r[name]) for r in rows]
    return columns


def plot_history(history_csv: Path, png: Path, title: str) -> None:
    history = read_history(history_csv)
    figure = Figure(figsize=(10, 7), layout="tight")
    latency, throughput = figure.subplots(2, 1, sharex=True)
    for name in PERCENTILES:
        latency.plot(history["t"], history[name], label=f"p{name.rstrip('%')}")
    latency.set_ylabel("response time (ms)")
    latency.set_yscale("log")
    latency.legend(loc="upper left")
    latency.grid(True, which="both", alpha=0.3)
    throughput.plot(history["t"], history["Requests/s"], label="requests/s")
    throughput.plot(history["t"], history["Failures/s"], label="failures/s", color="tab:red")
    throughput.set_ylabel("per second")
    throughput.set_xlabel("seconds since start")
    throughput.grid(True, alpha=0.3)
    users = throughput.twinx()
    users.plot(history["t"], history["User Count"], label="users", color="tab:gray", linestyle="--")
    users.set_ylabel("users")
    users.set_ylim(bottom=0)
    lines = throughput.get_legend_handles_labels()[0] + users.get_legend_handles_labels()[0]
    throughput.legend(lines, [line.get_label() for line in lines], loc="upper left")
    figure.suptitle(title)
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=110)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def summary_table(summary: dict[str, Any]) -> Table:
    """The run at a glance: throughput, latency, failures, reconciliation, thresholds, CPU per process."""
    table = Table(title=f"Load run {summary['run_id']} ({summary['mode']}, {summary['profile']}, "
                        f"{summary['users']} users, {summary['duration_s']} s)", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    for name in ("requests", "requests_per_s", "classifications_per_s", "p50_ms", "p95_ms", "p99_ms",
                 "failure_ratio"):
        if summary.get(name) is not None:
            table.add_row(name.replace("_per_s", "/s").replace("_", " "), _format(summary[name]))
    reconciliation = summary.get("reconciliation")
    if reconciliation is not None:
        counts = " / ".join(str(reconciliation[k]) for k in ("sent", "recorded", "missing", "duplicate", "unexpected"))
        table.add_row("sent / recorded / missing / duplicate / unexpected", counts,
                      style=None if reconciliation["ok"] else "red")
        for key, label in (("rejected", "headlines refused (4xx) without an id of their own"),
                           ("unnamed", "headlines answered without ids"),
                           ("unanswered", "headlines without an answer")):
            if reconciliation[key]:
                table.add_row(label, str(reconciliation[key]), style="yellow")
    if summary.get("unsaved_logged"):
        table.add_row("logged as transaction_unsaved", str(summary["unsaved_logged"]), style="yellow")
    for item in summary["thresholds"]:
        table.add_row(f"threshold {item['name']} {item['bound']} {item['limit']:g}",
                      "pass" if item["passed"] else "FAIL", style=None if item["passed"] else "red")
    for process, cores in summary.get("cpu_cores", {}).items():
        table.add_row(f"CPU cores used: {process}", f"{cores:.2f}")
    return table


def print_summary(summary: dict[str, Any]) -> None:
    Console().print(summary_table(summary))
