"""`make chaos` at small scale on the tiny model: every fault phase passes and nothing is lost (about 40 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.chaos import PHASES
from tests.support import REPO_ROOT
from training_jobs.config import split_file

pytestmark = pytest.mark.slow


def test_chaos_run_shows_the_documented_statuses_and_loses_no_record(tiny_model_dir: Path, data_dir: Path,
                                                                     tmp_path: Path) -> None:
    command = [sys.executable, "-m", "loadtest.chaos", "--model-dir", str(tiny_model_dir),
               "--data", str(split_file(data_dir, "test")), "--requests", "16", "--users", "4",
               "--outage-s", "4", "--output", str(tmp_path)]
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    report = json.loads((tmp_path / "chaos.json").read_text())
    phases = {phase["phase"]: phase for phase in report["phases"]}
    assert report["passed"] and list(phases) == [phase.name for phase in PHASES]
    for phase in phases.values():  # exactly the records the API logged as unsaved were missing, until the replay
        assert (phase["before_replay"]["missing"], phase["after_replay"]["missing"]) == (phase["unsaved"], 0)
        assert phase["after_replay"]["ok"]
    assert phases["DynamoDB outage"]["unsaved"] > 0 and phases["DynamoDB throttling"]["unsaved"] > 0
    assert "classify 504 model_timeout" in phases["endpoint timeout"]["outcomes"]
    assert (tmp_path / "chaos.md").read_text().count("| ok |") == len(PHASES)
