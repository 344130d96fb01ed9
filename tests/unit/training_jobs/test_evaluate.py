"""The evaluation report and its command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.artifact import read_metadata
from model.calibration import UNCERTAIN_BELOW
from training_jobs.config import split_file
from training_jobs.data import load_splits
from training_jobs.evaluate import compute_metrics, format_report, main


def test_metrics_on_a_known_confusion() -> None:
    metrics = compute_metrics([0, 0, 1, 1, 2, 3], [0, 1, 1, 1, 2, 2], ["B", "S", "E", "H"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["confusion_matrix"] == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]]
    assert metrics["per_class"]["H"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 2 / 3 + 0) / 4)
    assert "accuracy=0.6667" in format_report(metrics)


def test_cli_prints_json_and_writes_the_confusion_plot(
        tiny_model_dir: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "cm.png"
    assert main(["--model-dir", str(tiny_model_dir), "--data", str(split_file(data_dir, "valid")),
                 "--json", "--plot", str(png)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 1336 and set(report["per_class"]) == {"Business", "Science", "Entertainment", "Health"}
    assert 0 <= report["accuracy"] <= 1 and png.stat().st_size > 1000


def test_cli_reads_the_raw_uci_format(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "newsCorpora.csv"
    raw.write_text("1\tFed holds rates\thttp://x\tReuters\tb\ts\twww.r.com\t1\n"
                   "2\tNew flu vaccine\thttp://y\tWebMD\tm\ts\twww.w.com\t2\n")
    assert main(["--model-dir", str(tiny_model_dir), "--data", str(raw), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 2


def test_cli_reports_bad_input_without_a_traceback(
        tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model-dir", str(tiny_model_dir), "--data", str(tmp_path / "absent.tsv")]) == 2
    assert "absent.tsv: no such file" in capsys.readouterr().err
    assert main(["--model-dir", str(tmp_path), "--data", str(tiny_model_dir / "labels.json")]) == 2


def test_json_reports_calibration_before_and_after_and_the_plots_sit_beside_the_confusion_matrix(
        tiny_model_dir: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "cm.png"
    assert main(["--model-dir", str(tiny_model_dir), "--data", str(split_file(data_dir, "test")),
                 "--json", "--plot", str(png), "--runtime", "torch"]) == 0
    report = json.loads(capsys.readouterr().out)
    calibration = report["calibration"]
    assert calibration["method"] == "temperature" and calibration["temperature"] > 0
    for when in ("before", "after"):
        assert set(calibration[when]) == {"ece", "brier", "nll", "mean_top_score", "accuracy"}
        assert calibration[when]["accuracy"] == pytest.approx(report["accuracy"])
    assert report["uncertain"]["threshold"] == UNCERTAIN_BELOW and 0 <= report["uncertain"]["coverage"] <= 1
    for name in ("reliability_test.png", "coverage_test.png"):
        assert (tmp_path / name).stat().st_size > 1000 and report[name.replace(".", "_").replace("_test", "")]


@pytest.mark.parametrize(("flag", "subset"), [("--story-disjoint", "judge"), ("--held-out-publishers", "held_out")])
def test_held_out_sets_are_rebuilt_from_the_data_the_model_trained_on(
        tiny_model_dir: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], flag: str, subset: str) -> None:
    recorded = read_metadata(tiny_model_dir)
    hp = recorded["hyperparameters"]
    assert main(["--model-dir", str(tiny_model_dir), "--data", str(data_dir), flag, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    splits = load_splits(data_dir, hp["seed"], [data_dir / "corpus.tsv.gz"], hp["holdout_publishers"],
                         hp["judge_stories"])
    assert report["n"] == len(getattr(splits, subset)) > 500
    assert recorded["data"]["judge"]["sha256"] == splits.judge_stats["sha256"]


def test_a_judge_that_cannot_be_rebuilt_is_an_error_not_another_set(
        tiny_model_copy: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from model.artifact import write_metadata

    metadata = read_metadata(tiny_model_copy)
    metadata["data"]["extra_data"] = [str(tmp_path / "gone.tsv.gz")]
    write_metadata(tiny_model_copy, metadata)
    assert main(["--model-dir", str(tiny_model_copy), "--data", str(data_dir), "--story-disjoint"]) == 2
    assert "gone.tsv.gz: the model was also trained on this file" in capsys.readouterr().err
    metadata["data"]["extra_data"], metadata["data"]["judge"]["sha256"] = [], "0" * 64
    write_metadata(tiny_model_copy, metadata)
    assert main(["--model-dir", str(tiny_model_copy), "--data", str(data_dir), "--story-disjoint"]) == 2
    assert "is not the one" in capsys.readouterr().err
