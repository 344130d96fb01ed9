"""`make drift` (chalice_app/reports/drift.py): the drift job's computation offline, with token length, plots and
JSON, over a window of the local table."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from chalicelib import transactions
from chalicelib.drift import Baseline, DriftThresholds, Observation, compare

from chalice_app.reports.drift import features, main
from devkit.stages import stage_environment
from model.artifact import DRIFT_BASELINE_FILE, read_metadata
from model.runtime import load_predictor
from training_jobs.data import splits_of_model
from training_jobs.drift_baseline import main as write_baseline_command

WINDOW = 120


@pytest.fixture(scope="module")
def torch_baseline_model(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, data_dir: Path) -> Path:
    """The tiny model with its baseline scored by the predictor used below: bit-identical scores."""
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("drift-report") / "model"))
    assert write_baseline_command(["--model-dir", str(folder), "--data", str(data_dir), "--runtime", "torch"]) == 0
    return folder


@pytest.fixture(scope="module")
def valid_observations(torch_baseline_model: Path, data_dir: Path) -> list[Observation]:
    predictor = load_predictor(torch_baseline_model, "torch")
    titles = [ex.title for ex in splits_of_model(torch_baseline_model, data_dir).valid]
    return [Observation(title, predictor.labels.name(int(row.argmax())), float(row.max()))
            for title, row in zip(titles, predictor.predict_proba(titles), strict=True)]


def test_offline_features_measure_the_baseline_split_exactly_as_training_did(
        torch_baseline_model: Path, valid_observations: list[Observation]) -> None:
    """Five features, two implementations (numpy + HF tokenizer in training, bisect + tokenizers here): PSI 0."""
    baseline_file = str(torch_baseline_model / DRIFT_BASELINE_FILE)
    baseline = Baseline.from_dict(json.loads(Path(baseline_file).read_text()))
    report = compare(baseline, valid_observations, DriftThresholds(), features(baseline_file, None))
    assert {f.feature for f in report.features} == set(baseline.features) and report.not_measured == []
    assert all(f.psi == pytest.approx(0.0, abs=1e-12) for f in report.features), report.to_dict()["psi"]


@pytest.fixture
def local_table(moto_url: str, aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in stage_environment("local").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    monkeypatch.setenv("TABLE_READ_TIMEOUT_SECONDS", "10")
    transactions.create_table()
    return moto_url


def test_the_command_writes_json_and_a_plot_of_the_local_window(local_table: str, tmp_path: Path,
                                                                torch_baseline_model: Path,
                                                                valid_observations: list[Observation]) -> None:
    version = read_metadata(torch_baseline_model)["model_version"]
    now = dt.datetime.now(dt.UTC)
    for i, seen in enumerate(valid_observations[:WINDOW]):
        outcome = transactions.Outcome(transactions.new_request_id(), seen.headline, 9.0, seen.label,
                                       {seen.label: seen.top_score}, version)
        assert transactions.save([transactions.build_record(outcome, now - dt.timedelta(minutes=i), "local", None)])
    assert main(["--stage", "local", "--baseline", str(torch_baseline_model / DRIFT_BASELINE_FILE),
                 "--min-samples", "100", "--output", str(tmp_path)]) == 0
    (report,) = json.loads((tmp_path / "drift.json").read_text())["reports"]
    assert (report["model_version"], report["samples"], report["endpoints"]) == (version, WINDOW, ["local"])
    assert set(report["psi"]) == {"label", "top_score", "title_chars", "title_words", "token_length"}
    assert (tmp_path / f"drift-{version}.png").stat().st_size > 10_000


def test_unreachable_local_stack_is_a_clear_error(aws_credentials: None, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in stage_environment("local").items():  # set here, so the command changes nothing
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    assert main(["--stage", "local", "--baseline", "unused.json", "--local-state-dir", str(tmp_path)]) == 1
    assert "is `make local` running" in capsys.readouterr().err
