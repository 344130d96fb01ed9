"""End to end A/B: two real models as two endpoints of one local endpoint server, routed by `chalice local`,
then `chalice_app.reports.ab` reads the local stack's table like `make ab-report` does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from scipy.stats import binomtest

from model.artifact import read_metadata, write_metadata
from tests.support.local_stack_testing import REPO_ROOT, RunningStack, request_json, running_stack

pytestmark = pytest.mark.slow
CONTROL, CANDIDATE = "news-v3", "news-v4"
WEIGHTS = {CONTROL: 0.8, CANDIDATE: 0.2}
CLIENTS = 100
# Each client's variant is a hash of its id, so the split is fixed for these ids; the band is what a fair draw at
# the candidate's weight stays inside 999 times in 1000 (two-sided binomial test). For 100 clients at 0.2 it admits
# about 8 to 34: an even split (~50), or the weights swapped (~80), falls far outside.
ALPHA = 0.001


@pytest.fixture(scope="module")
def candidate_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model under another version: the second variant."""
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("candidate") / "model"))
    metadata = read_metadata(folder)
    write_metadata(folder, {**metadata, "model_version": f"{metadata['model_version']}-candidate"})
    return folder


@pytest.fixture(scope="module")
def ab_stack(tiny_model_dir: Path, candidate_model_dir: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    variants = ["--variant", f"{CONTROL}={tiny_model_dir}:{WEIGHTS[CONTROL]}",
                "--variant", f"{CANDIDATE}={candidate_model_dir}:{WEIGHTS[CANDIDATE]}"]
    with running_stack(tiny_model_dir, tmp_path_factory.mktemp("ab_stack"), variants) as running:
        yield running


def classify(stack: RunningStack, headline: str, client_id: str) -> dict:
    request = urllib.request.Request(f"{stack.api_url}/classify", data=json.dumps({"headline": headline}).encode(),
                                     headers={"Content-Type": "application/json", "X-Client-Id": client_id})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_two_models_answer_by_weight_each_client_sticks_and_the_report_compares_them(
        ab_stack: RunningStack, tiny_model_dir: Path, candidate_model_dir: Path, tmp_path: Path) -> None:
    versions = {read_metadata(tiny_model_dir)["model_version"]: CONTROL,
                read_metadata(candidate_model_dir)["model_version"]: CANDIDATE}
    assert request_json(f"{ab_stack.api_url}/health/details")[1]["variants"] == WEIGHTS

    answers = [classify(ab_stack, f"Stocks rally as the Fed holds rates, day {i}", f"user-{i}")
               for i in range(CLIENTS)]
    records = [request_json(f"{ab_stack.api_url}/transactions/{a['request_id']}")[1] for a in answers]
    to_candidate = Counter(r["endpoint_name"] for r in records)[CANDIDATE]
    assert binomtest(to_candidate, CLIENTS, WEIGHTS[CANDIDATE]).pvalue >= ALPHA, \
        f"{to_candidate} of {CLIENTS} clients went to {CANDIDATE}, weighted {WEIGHTS[CANDIDATE]}"
    assert all(versions[r["model_version"]] == r["endpoint_name"] for r in records)
    sticky = [classify(ab_stack, "Oil prices fall", "user-7") for _ in range(5)]
    assert len({a["model_version"] for a in sticky}) == 1

    for answer in answers:
        status, _ = request_json(f"{ab_stack.api_url}/transactions/{answer['request_id']}/feedback",
                                 json.dumps({"label": answer["label"]}).encode())
        assert status == 200
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    done = subprocess.run([sys.executable, "-m", "chalice_app.reports.ab", "--stage", "local", "--hours", "1",
                           "--local-state-dir", str(ab_stack.state_dir), "--output", str(tmp_path),
                           "--control", CONTROL, "--min-requests", "5", "--min-feedback", "5"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "ab-report.json").read_text())
    served = Counter(versions[a["model_version"]] for a in answers + sticky)
    assert {name: v["requests"] for name, v in report["variants"].items()} == served
    assert all(v["accuracy"] == 1.0 for v in report["variants"].values())  # the feedback agreed with every answer
    assert report["verdict"].startswith(f"{CANDIDATE} vs {CONTROL}: no significant difference in accuracy")
    assert (tmp_path / "ab-report.png").is_file()
