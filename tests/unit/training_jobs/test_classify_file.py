"""`make classify-file`: every format in and back out, bad rows to the rejects file, input order, no half files."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.artifact import read_metadata
from model.labels import LabelMap
from model.runtime import load_predictor
from tests.support import REPO_ROOT
from training_jobs.classify_file import JsonLines, PlainText, Table, classify_file, detect_format, main
from training_jobs.config import split_file
from training_jobs.data import DataError

NAMES = LabelMap.default().names
ADDED = ["label", "model_version", *(f"score_{name}" for name in NAMES)]


class LengthModel:
    """A stand-in model whose label follows from the headline alone (its length), so order can be checked exactly."""

    labels = LabelMap.default()
    metadata: dict[str, Any] = {"model_version": "length-v1"}  # noqa: RUF012 - read-only, as a model's metadata

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls, self.fail_on_call = 0, fail_on_call

    def predict_proba(self, titles: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("model failed mid-file")
        probabilities = np.full((len(titles), len(NAMES)), 0.1, dtype=np.float32)
        probabilities[np.arange(len(titles)), [len(t) % len(NAMES) for t in titles]] = 0.7
        return probabilities


def expected_label(title: str) -> str:
    return NAMES[len(" ".join(title.split())) % len(NAMES)]


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_the_test_split_comes_back_whole_in_order_with_labels_and_scores(data_dir: Path, tmp_path: Path) -> None:
    source = split_file(data_dir, "test")
    summary = classify_file(source, tmp_path / "out.tsv", LengthModel(), "fake", window=100)
    rows_in, rows_out = read_tsv(source), read_tsv(tmp_path / "out.tsv")
    assert list(rows_out[0]) == [*rows_in[0], *ADDED]
    assert [{k: row[k] for k in rows_in[0]} for row in rows_out] == rows_in
    assert [row["label"] for row in rows_out] == [expected_label(row["title"]) for row in rows_in]
    assert {row["model_version"] for row in rows_out} == {"length-v1"}
    assert all(float(row[f"score_{row['label']}"]) == pytest.approx(0.7, abs=1e-6) for row in rows_out)
    assert (summary.rows, summary.labelled, summary.rejected) == (len(rows_in), len(rows_in), 0)
    assert summary.metrics is not None and summary.metrics["n"] == len(rows_in)
    assert (tmp_path / "out.tsv.rejects").read_text() == "line\treason\trow\n"


def test_command_line_labels_the_test_split_with_the_real_model_and_prints_accuracy(
        data_dir: Path, tiny_onnx_model_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.tsv"
    result = subprocess.run([sys.executable, "-m", "training_jobs.classify_file", "--model-dir",
                             str(tiny_onnx_model_dir), "--input", str(split_file(data_dir, "test")),
                             "--output", str(output), "--no-progress"],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1,336 of 1,336 rows" in result.stdout and "accuracy" in result.stdout and "macro-F1" in result.stdout
    rows = read_tsv(output)
    assert len(rows) == 1336
    assert {row["model_version"] for row in rows} == {read_metadata(tiny_onnx_model_dir)["model_version"]}
    assert all(sum(float(row[f"score_{name}"]) for name in NAMES) == pytest.approx(1, abs=1e-4) for row in rows)


def test_real_model_scores_do_not_depend_on_the_window(data_dir: Path, tiny_onnx_model_dir: Path,
                                                      tmp_path: Path) -> None:
    """Windows are length-sorted inside and written back in input order: any window size gives the same rows."""
    predictor = load_predictor(tiny_onnx_model_dir, "onnx-int8")
    source = split_file(data_dir, "valid")
    classify_file(source, tmp_path / "a.tsv", predictor, "onnx-int8", window=7)
    classify_file(source, tmp_path / "b.tsv", predictor, "onnx-int8", window=5000)
    small, large = read_tsv(tmp_path / "a.tsv"), read_tsv(tmp_path / "b.tsv")
    assert [row["title"] for row in small] == [row["title"] for row in large]
    for a, b in zip(small, large, strict=True):  # int8 activations are quantised per call: scores move ~1e-3
        assert [float(a[f"score_{n}"]) for n in NAMES] == pytest.approx([float(b[f"score_{n}"]) for n in NAMES],
                                                                         abs=1e-2)


def test_json_lines_keep_their_fields_and_bad_lines_go_to_rejects(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"headline": "Fed raises rates", "id": 1}\n\n{"inputs": "Apple unveils iPhone", '
                       b'"category": "t"}\nnot json\n{"headline": "  "}\n{"other": 1}\n{"headline": "caf\xff"}\n'
                       b'{"headline": ["a"]}\n')
    summary = classify_file(source, tmp_path / "out.jsonl", LengthModel(), "fake")
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in row.items() if k not in ADDED} for row in out] == [
        {"headline": "Fed raises rates", "id": 1}, {"inputs": "Apple unveils iPhone", "category": "t"}]
    assert [row["label"] for row in out] == [expected_label("Fed raises rates"), expected_label("Apple unveils iPhone")]
    rejects = read_tsv(tmp_path / "out.jsonl.rejects")
    assert [(row["line"], row["reason"].split(":")[0].split(" (")[0]) for row in rejects] == [
        ("2", "blank line"), ("4", "not valid JSON"), ("5", "empty title"),
        ("6", "not a JSON object with 'headline' or 'inputs'"), ("7", "not UTF-8"), ("8", "'headline' is not a string")]
    assert rejects[4]["row"] == '{"headline": "caf\\xff"}'
    assert (summary.rows, summary.labelled, summary.rejected) == (8, 2, 6)
    assert summary.metrics is not None and summary.metrics["n"] == 1  # the one line with a category


def test_plain_text_becomes_a_table_with_a_title_column(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("Fed raises rates\nApple unveils   iPhone\n\n   \nEbola spreads\n")
    summary = classify_file(source, tmp_path / "out.tsv", LengthModel(), "fake")
    rows = read_tsv(tmp_path / "out.tsv")
    assert [row["title"] for row in rows] == ["Fed raises rates", "Apple unveils   iPhone", "Ebola spreads"]
    assert [row["label"] for row in rows] == [expected_label(row["title"]) for row in rows]
    assert [(r["line"], r["reason"]) for r in read_tsv(tmp_path / "out.tsv.rejects")] == [("3", "empty title"),
                                                                                          ("4", "empty title")]
    assert summary.metrics is None


def raw_row(row_id: int, title: str, category: str = "b") -> str:
    return "\t".join([str(row_id), title, f"http://example.com/{row_id}", "Reuters", category, "dStory",
                      "example.com", "1394470370698"])


def test_raw_newscorpora_gzipped_with_bad_rows_finishes_and_lists_them(tmp_path: Path) -> None:
    lines = [raw_row(1, "Fed raises rates"), raw_row(2, "Stocks fall", "x"), "3\ttoo few\tcolumns",
             raw_row(4, "   "), raw_row(5, "Ebola spreads", "m")]
    source = tmp_path / "newsCorpora.csv.gz"
    source.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode() + raw_row(6, "caf").encode() + b"\xe9\n"))
    summary = classify_file(source, tmp_path / "out.csv.gz", LengthModel(), "fake")
    out = gzip.decompress((tmp_path / "out.csv.gz").read_bytes()).decode().splitlines()
    assert [line.split("\t")[:8] for line in out] == [lines[0].split("\t"), lines[1].split("\t"), lines[4].split("\t")]
    assert [line.split("\t")[8] for line in out] == [expected_label(t) for t in ("Fed raises rates", "Stocks fall",
                                                                                 "Ebola spreads")]
    assert all(len(line.split("\t")) == 8 + len(ADDED) for line in out)
    rejects = read_tsv(tmp_path / "out.csv.gz.rejects")
    assert [(r["line"], r["reason"]) for r in rejects] == [
        ("3", "wrong column count: 3, newsCorpora.csv rows have 8"), ("4", "empty title"),
        ("6", "not UTF-8 (byte 0xe9)")]
    assert summary.rejected_by_reason == {"wrong column count": 1, "empty title": 1, "not UTF-8": 1}
    assert summary.unknown_categories == 1 and summary.metrics is not None and summary.metrics["n"] == 2


def test_csv_with_quoted_fields_across_lines_keeps_line_numbers(tmp_path: Path) -> None:
    source = tmp_path / "kaggle.csv"
    source.write_text('ID,TITLE,CATEGORY\n1,"Fed raises rates, again",b\n2,"two\nline title",t\n3,short\n'
                      '4,Ebola spreads,Health\n')
    summary = classify_file(source, tmp_path / "out.csv", LengthModel(), "fake")
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["TITLE"] for row in rows] == ["Fed raises rates, again", "two\nline title", "Ebola spreads"]
    assert [(r["line"], r["reason"]) for r in read_tsv(tmp_path / "out.csv.rejects")] == [
        ("5", "wrong column count: 2, the header has 3")]
    assert summary.metrics is not None and summary.metrics["n"] == 3  # codes and label names both count


def test_a_failed_run_leaves_no_half_file_and_keeps_the_previous_output(data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.tsv"
    output.write_text("the previous run\n")
    with pytest.raises(RuntimeError, match="mid-file"):
        classify_file(split_file(data_dir, "test"), output, LengthModel(fail_on_call=3), "fake", window=100)
    assert output.read_text() == "the previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv"]


@pytest.mark.parametrize(("content", "message"), [
    ("", "empty file"),
    ("category\tpublisher\nb\tReuters\n", "no `title` column"),
    ("title\tlabel\nFed raises rates\tBusiness\n", "already has column(s) ['label']"),
])
def test_inputs_that_cannot_be_classified_stop_with_a_clear_error(tmp_path: Path, content: str,
                                                                  message: str) -> None:
    source = tmp_path / "in.tsv"
    source.write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        classify_file(source, tmp_path / "out.tsv", LengthModel(), "fake")
    assert not (tmp_path / "out.tsv").exists()


def test_main_reports_a_missing_input_without_a_traceback(tiny_onnx_model_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model-dir", str(tiny_onnx_model_dir), "--input", str(tmp_path / "absent.tsv"),
                 "--output", str(tmp_path / "out.tsv")]) == 2
    assert "absent.tsv: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "first_line", "kind"), [
    ("feed.jsonl", "anything", JsonLines), ("feed.ndjson.gz", "{}", JsonLines),
    ("feed", '{"headline": "x"}', JsonLines),
    ("feed.txt", "title\tcategory", PlainText), ("feed", "Fed raises rates", PlainText),
    ("feed", "category\ttitle", Table), ("newsCorpora.csv", raw_row(1, "x"), Table), ("k.csv", "ID,TITLE", Table),
])
def test_format_is_told_by_the_name_then_by_the_first_line(name: str, first_line: str, kind: type) -> None:
    assert isinstance(detect_format(Path(name), first_line), kind)
