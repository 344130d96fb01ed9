"""The error analysis report and its plots."""

from __future__ import annotations

from pathlib import Path

from training_jobs.config import split_file


def test_error_analysis_writes_its_report_and_plots(tiny_model_copy: Path, data_dir: Path) -> None:
    from training_jobs.error_analysis import REPORT_FILE
    from training_jobs.error_analysis import main as error_analysis

    assert error_analysis(["--model-dir", str(tiny_model_copy), "--data", str(split_file(data_dir, "test")),
                           "--training-data", str(data_dir)]) == 0
    report = (tiny_model_copy / REPORT_FILE).read_text()
    for heading in ("## test", "## story_disjoint", "## held_out_publishers", "### Confusion pairs",
                    "### Most confident mistakes", "### Accuracy per publisher", "### Per-class calibration"):
        assert heading in report
    assert "| Reuters |" in report
    for png in ("error_publishers_test.png", "error_publishers_story_disjoint.png",
                "error_class_calibration_held_out_publishers.png"):
        assert (tiny_model_copy / png).stat().st_size > 1000
