"""The SageMaker handler functions: request parsing, batching, the response shape, runtime selection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from model.artifact import read_metadata
from model.labels import LabelMap
from model.runtime import RuntimeUnavailableError, load_predictor, resolve_runtime
from model.serving.inference import (
    JSON_LINES,
    MAX_HEADLINES,
    InvalidInputError,
    JsonLinesRequest,
    format_predictions,
    input_fn,
    model_fn,
    output_fn,
    predict_fn,
)
from tests.support import REPO_ROOT

HEADLINES = ["Fed leaves interest rates unchanged", "Apple unveils new iPhone", "Ebola outbreak spreads"]


@pytest.mark.parametrize(("body", "expected"), [
    ('{"inputs": "Fed raises rates"}', ["Fed raises rates"]),
    (b'{"inputs": ["a", "b"]}', ["a", "b"]),
    ('{"inputs": ["caf\\u00e9 owners protest"], "parameters": {}}', ["café owners protest"]),
])
def test_input_fn_accepts_a_headline_or_a_list(body: str | bytes, expected: list[str]) -> None:
    assert input_fn(body, "application/json; charset=utf-8") == expected


@pytest.mark.parametrize(("body", "content_type", "reason"), [
    ('{"inputs": "x"}', "text/plain", "unsupported content type"),
    ('{"inputs": "x"}', None, "unsupported content type"),
    ("{oops", "application/json", "not valid JSON"),
    (b"\xff\xfe", "application/json", "not valid JSON"),
    ('["a headline"]', "application/json", "JSON object"),
    ('{"text": "x"}', "application/json", '"inputs"'),
    ('{"inputs": []}', "application/json", "non-empty list"),
    ('{"inputs": 42}', "application/json", "non-empty list"),
    ('{"inputs": ["ok", ""]}', "application/json", "non-empty string"),
    ('{"inputs": ["ok", null]}', "application/json", "non-empty string"),
    (json.dumps({"inputs": ["x"] * (MAX_HEADLINES + 1)}), "application/json", "at most"),
])
def test_input_fn_rejects_bad_requests_with_a_reason(body: str | bytes, content_type: str | None, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        input_fn(body, content_type)


def test_json_lines_body_gives_each_bad_line_its_reason_and_keeps_the_others() -> None:
    body = "\n".join(['{"inputs": "Fed raises rates"}', "", "{oops", '{"text": "x"}', '{"inputs": ["a", "b"]}',
                      '{"inputs": "  "}', '{"inputs": "\\ud800 lone surrogate"}', '{"inputs": "caf\u00e9"}']) + "\n"
    parsed = input_fn(body.encode(), "application/jsonlines")
    assert isinstance(parsed, JsonLinesRequest)
    assert parsed.lines == 8  # the final newline ends line 8; it does not start a ninth
    assert parsed.headlines == ["Fed raises rates", "café"]
    assert parsed.positions == [0, 7]
    assert sorted(parsed.errors) == [1, 2, 3, 4, 5, 6]
    assert "blank line" in parsed.errors[1] and "not valid JSON" in parsed.errors[2]
    assert '"inputs"' in parsed.errors[3] and "non-empty string" in parsed.errors[4]
    assert "non-empty string" in parsed.errors[5] and "lone surrogate" in parsed.errors[6]


def test_json_lines_body_that_is_not_utf8_is_refused_whole() -> None:
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        input_fn(b'{"inputs": "\xff"}', JSON_LINES)


def test_json_lines_answer_one_line_per_request_line_in_order(tiny_onnx_model_dir: Path) -> None:
    model = load_predictor(tiny_onnx_model_dir, "onnx-int8")
    body = "\n".join([json.dumps({"inputs": HEADLINES[0]}), "", json.dumps({"inputs": HEADLINES[2]})])
    answer = output_fn(predict_fn(input_fn(body, JSON_LINES), model), JSON_LINES)
    assert not answer.endswith("\n")  # Batch Transform's AssembleWith=Line adds the newline
    lines = [json.loads(line) for line in answer.split("\n")]
    version = read_metadata(tiny_onnx_model_dir)["model_version"]
    assert [line["model_version"] for line in lines] == [version] * 3
    assert lines[1]["error"] == {"type": "InvalidInput",
                                 "message": 'blank line; send one {"inputs": "headline"} per line'}
    alone = json.loads(output_fn(predict_fn([HEADLINES[0], HEADLINES[2]], model), "application/json"))
    assert [lines[0]["label"], lines[2]["label"]] == [p["label"] for p in alone["predictions"]]
    assert lines[2]["scores"] == pytest.approx(alone["predictions"][1]["scores"], abs=1e-2)


def test_json_lines_of_bad_lines_only_are_answered_without_the_model() -> None:
    class NoModel:
        labels = LabelMap.default()
        metadata: ClassVar[dict[str, str]] = {"model_version": "v1"}

        def predict_proba(self, titles: list[str]) -> np.ndarray:
            raise AssertionError("the model must not run without headlines")

    answer = output_fn(predict_fn(input_fn("\n\n", JSON_LINES), NoModel()), "*/*")
    assert [json.loads(line)["error"]["message"] for line in answer.split("\n")] == [
        'blank line; send one {"inputs": "headline"} per line'] * 2


def test_json_lines_answer_refuses_a_json_accept_type() -> None:
    with pytest.raises(InvalidInputError, match="unsupported accept type"):
        output_fn([{"label": "Business"}], "application/json")


def test_format_predictions_takes_names_and_version_from_its_arguments() -> None:
    response = format_predictions(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]), ("A", "B", "C"), "v1")
    assert response["model_version"] == "v1"
    assert [p["label"] for p in response["predictions"]] == ["B", "A"]
    assert response["predictions"][0]["scores"] == {"A": 0.1, "B": 0.7, "C": 0.2}


@pytest.mark.parametrize("accept", ["application/json", "*/*", "", None])
def test_output_fn_serialises_json(accept: str | None) -> None:
    assert json.loads(output_fn({"predictions": []}, accept)) == {"predictions": []}


def test_output_fn_rejects_other_accept_types() -> None:
    with pytest.raises(InvalidInputError, match="unsupported accept type"):
        output_fn({"predictions": []}, "text/csv")


@pytest.mark.parametrize("runtime", ["torch", "onnx", "onnx-int8"])
def test_handler_round_trip_per_runtime(tiny_onnx_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                        runtime: str) -> None:
    monkeypatch.setenv("MODEL_RUNTIME", runtime)
    model = model_fn(str(tiny_onnx_model_dir))
    response = json.loads(output_fn(predict_fn(input_fn(json.dumps({"inputs": HEADLINES}), "application/json"),
                                               model), "application/json"))
    names = LabelMap.load(tiny_onnx_model_dir).names
    assert response["model_version"] == read_metadata(tiny_onnx_model_dir)["model_version"]
    assert [list(p["scores"]) for p in response["predictions"]] == [list(names)] * len(HEADLINES)


def test_auto_runtime_prefers_int8_only_when_the_folder_has_it(tiny_model_dir: Path,
                                                               tiny_onnx_model_dir: Path) -> None:
    assert resolve_runtime(tiny_model_dir, "auto") == "torch"
    assert resolve_runtime(tiny_onnx_model_dir, "auto") == "onnx-int8"
    with pytest.raises(RuntimeUnavailableError, match="make export-onnx"):
        load_predictor(tiny_model_dir, "onnx-int8")
    with pytest.raises(RuntimeUnavailableError, match="unknown runtime"):
        resolve_runtime(tiny_model_dir, "tensorrt")


def test_onnx_runtime_serves_without_importing_torch(tiny_onnx_model_dir: Path) -> None:
    """Cold start: the slim image has no torch, and importing it would cost a second even where it exists."""
    script = ("import sys; from pathlib import Path; from model.runtime import load_predictor; "
              f"load_predictor(Path({str(tiny_onnx_model_dir)!r}), 'onnx-int8').predict_proba(['a headline']); "
              "import model.serving.server, model.serving.inference; "
              "print(sorted(m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=REPO_ROOT, timeout=120)
    assert result.stdout.strip() == "[]"
