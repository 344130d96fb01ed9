"""End to end: `make loadtest`'s runner against a stack of its own, a few users for a few seconds.

The thresholds here are lenient on purpose (the tiny model on a shared machine; speed is `make loadtest`'s
business): the test is that every headline Locust sent has its record, and that the reports are written.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.local_stack_testing import REPO_ROOT

pytestmark = pytest.mark.slow

LENIENT = "max_failure_ratio = 0.0\nmax_p95_ms = 60000\nmin_requests_per_s = 1\nmin_classifications_per_s = 1\n"


def test_a_short_load_run_reconciles_every_headline_it_sent(tiny_model_dir: Path, tmp_path: Path) -> None:
    output, thresholds = tmp_path / "loadtest", tmp_path / "thresholds.toml"
    thresholds.write_text(LENIENT)
    command = [sys.executable, "-m", "loadtest.run", "--own-stack", "--model-dir", str(tiny_model_dir),
               "--runtime", "auto", "--users", "4", "--duration", "6", "--user-rate", "4",
               "--thresholds", str(thresholds), "--output", str(output)]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    summary = json.loads((output / "summary.json").read_text())
    reconciliation = summary["reconciliation"]
    assert reconciliation["ok"]
    assert (reconciliation["missing"], reconciliation["duplicate"], reconciliation["unexpected"]) == (0, 0, 0)
    assert reconciliation["recorded"] == reconciliation["sent"] > 0
    assert summary["failure_ratio"] == 0.0
    assert [c["name"] for c in summary["thresholds"]] == ["failure ratio", "p95 ms", "requests/s",
                                                          "classifications/s"]

    with open(output / "locust_stats.csv", newline="") as handle:
        requests = {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(handle)}
    assert reconciliation["sent"] >= requests["/classify"] + requests.get("/classify/batch", 0)
    for report in ("locust.html", "latency.png", "locust_stats_history.csv", "ledger.json"):
        assert (output / report).stat().st_size > 0, report
