"""SageMaker inference handler (shipped as `code/inference.py` in model.tar.gz).

The Hugging Face inference toolkit's user-module contract, JSON and JSON Lines (Batch Transform). It imports
neither torch nor onnxruntime, so one artifact runs in both images (docs/serving.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

JSON = "application/json"
JSON_LINES = "application/jsonlines"
RUNTIME_ENV = "MODEL_RUNTIME"
MAX_HEADLINES = 256


class InvalidInputError(ValueError):
    """The request body cannot be classified; the message says why."""


@dataclass(frozen=True)
class JsonLinesRequest:
    """A JSON Lines body: the headlines of its good lines, and why each other line cannot be classified."""

    lines: int
    headlines: list[str]
    positions: list[int]  # the line index of each headline
    errors: dict[int, str]


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def model_fn(model_dir: str, context: Any = None) -> Any:
    """Load weights, tokenizer and label map once from the model folder (never from the Hub)."""
    from model.runtime import AUTO, load_predictor

    return load_predictor(Path(model_dir), os.environ.get(RUNTIME_ENV, AUTO))


def input_fn(input_data: bytes | str, content_type: str, context: Any = None) -> list[str] | JsonLinesRequest:
    """Parse and validate the request into a list of headlines (JSON Lines: per line, see `parse_json_lines`);
    every way a JSON body can be wrong is an InvalidInputError."""
    if media_type(content_type) == JSON_LINES:
        return parse_json_lines(input_data)
    if media_type(content_type) != JSON:
        raise InvalidInputError(f"unsupported content type {content_type!r}; send {JSON} or {JSON_LINES}")
    body = _parse_json(input_data)
    if not isinstance(body, dict) or "inputs" not in body:
        raise InvalidInputError('request body must be a JSON object with "inputs": a headline or a list of headlines')
    inputs = body["inputs"]
    if isinstance(inputs, str):
        return [validate_headline(inputs, '"inputs"')]
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInputError('"inputs" must be a headline or a non-empty list of headlines')
    if len(inputs) > MAX_HEADLINES:
        raise InvalidInputError(f'"inputs" holds {len(inputs)} headlines; send at most {MAX_HEADLINES} per request')
    return [validate_headline(value, f'"inputs"[{i}]') for i, value in enumerate(inputs)]


def _parse_json(data: bytes | str) -> Any:
    """Bad UTF-8, bad JSON, nesting too deep and integers too long to convert all fail here, as InvalidInputError."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError(f"not valid JSON: {exc}") from exc


def validate_headline(value: Any, where: str = "headline") -> str:
    """What every headline must be, in a JSON body or on a JSON Lines line: a string that is not blank and is
    valid Unicode text (JSON can escape a lone UTF-16 surrogate; the tokenizer cannot take it)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{where} must be a non-empty string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{where} is not valid Unicode text: it holds the lone surrogate "
                                f"U+{ord(value[exc.start]):04X} at character {exc.start}") from exc
    return value


def parse_json_lines(input_data: bytes | str) -> JsonLinesRequest:
    """One `{"inputs": "headline"}` per line; a blank or bad line is recorded with its reason, never raised.

    A final newline ends the last line rather than starting an empty one, as Batch Transform's line split sends it.
    """
    if isinstance(input_data, bytes):
        try:
            input_data = input_data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"request body is not UTF-8: {exc}") from exc
    lines = input_data.split("\n")
    if lines[-1] == "":
        lines.pop()
    headlines, positions, errors = [], [], {}
    for index, line in enumerate(lines):
        try:
            headlines.append(json_lines_headline(line))
            positions.append(index)
        except InvalidInputError as exc:
            errors[index] = str(exc)
    return JsonLinesRequest(len(lines), headlines, positions, errors)


def json_lines_headline(line: str) -> str:
    if not line.strip():
        raise InvalidInputError('blank line; send one {"inputs": "headline"} per line')
    record = _parse_json(line)
    if not isinstance(record, dict) or "inputs" not in record:
        raise InvalidInputError('each line must be a JSON object with "inputs": one headline')
    return validate_headline(record["inputs"], '"inputs"')


def format_predictions(probabilities: np.ndarray, names: Sequence[str], model_version: str) -> dict[str, Any]:
    """The response body: one label and one score per class name for each headline, and the model version."""
    predictions = [{"label": names[int(row.argmax())],
                    "scores": {name: round(float(p), 6) for name, p in zip(names, row, strict=True)}}
                   for row in probabilities]
    return {"predictions": predictions, "model_version": model_version}


def format_json_lines(request: JsonLinesRequest, probabilities: np.ndarray, names: Sequence[str],
                      model_version: str) -> list[dict[str, Any]]:
    """One answer per line of the request, in order: the prediction, or `error` for a line that had none."""
    predictions = format_predictions(probabilities, names, model_version)["predictions"]
    answers: list[dict[str, Any]] = [{} for _ in range(request.lines)]
    for position, prediction in zip(request.positions, predictions, strict=True):
        answers[position] = {**prediction, "model_version": model_version}
    for position, message in request.errors.items():
        answers[position] = {"error": {"type": "InvalidInput", "message": message}, "model_version": model_version}
    return answers


def headlines_of(data: list[str] | JsonLinesRequest) -> list[str]:
    return data.headlines if isinstance(data, JsonLinesRequest) else data


def format_response(data: list[str] | JsonLinesRequest, probabilities: np.ndarray, names: Sequence[str],
                    model_version: str) -> dict[str, Any] | list[dict[str, Any]]:
    """The answer to the parsed request: a JSON body, or one object per line for a JSON Lines request."""
    if isinstance(data, JsonLinesRequest):
        return format_json_lines(data, probabilities, names, model_version)
    return format_predictions(probabilities, names, model_version)


def predict_fn(data: list[str] | JsonLinesRequest, model: Any, context: Any = None) -> dict[str, Any] | list[Any]:
    """Classify all headlines of the request in one batch (none: a JSON Lines body of bad lines only)."""
    headlines = headlines_of(data)
    probabilities = model.predict_proba(headlines) if headlines else np.empty((0, len(model.labels)))
    return format_response(data, probabilities, model.labels.names, model.metadata["model_version"])


def output_fn(prediction: dict[str, Any] | list[dict[str, Any]], accept: str, context: Any = None) -> str:
    """JSON, or for a JSON Lines request one object per line (no final newline: Batch Transform adds it)."""
    if isinstance(prediction, list):
        if accept and media_type(accept) not in {JSON_LINES, "*/*"}:
            raise InvalidInputError(f"unsupported accept type {accept!r} for a {JSON_LINES} request; "
                                    f"accept {JSON_LINES}")
        return "\n".join(json.dumps(answer) for answer in prediction)
    if accept and (accept.split(";")[0].strip().lower() not in {JSON, "*/*"}):
        raise InvalidInputError(f"unsupported accept type {accept!r}; accept {JSON}")
    return json.dumps(prediction)
