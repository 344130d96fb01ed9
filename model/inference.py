"""SageMaker inference handler (shipped as `code/inference.py` in model.tar.gz).

Follows the Hugging Face inference toolkit's user-module contract: `model_fn(model_dir)`,
`input_fn(body, content_type)`, `predict_fn(data, model)`, `output_fn(prediction, accept)`.
Request: `{"inputs": "headline"}` or `{"inputs": ["h1", "h2", ...]}` as application/json.
Response: `{"predictions": [{"label": ..., "scores": {name: p}}], "model_version": ...}`.

The runtime comes from `MODEL_RUNTIME` (`auto`, `torch`, `onnx`, `onnx-int8`; default `auto`: the int8
ONNX model when the artifact has it and onnxruntime is installed, else PyTorch). The module imports
neither torch nor onnxruntime itself; `model.runtime` loads only what the chosen runtime needs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

JSON = "application/json"
RUNTIME_ENV = "MODEL_RUNTIME"
MAX_HEADLINES = 256


class InvalidInput(ValueError):
    """The request body cannot be classified; the message says why."""


def model_fn(model_dir: str, context: Any = None) -> Any:
    """Load weights, tokenizer and label map once from the model folder (never from the Hub)."""
    from model.runtime import AUTO, load_predictor

    return load_predictor(Path(model_dir), os.environ.get(RUNTIME_ENV, AUTO))


def input_fn(input_data: bytes | str, content_type: str, context: Any = None) -> list[str]:
    """Parse and validate the request into a list of headlines; every way a body can be wrong is an InvalidInput."""
    if (content_type or "").split(";")[0].strip().lower() != JSON:
        raise InvalidInput(f"unsupported content type {content_type!r}; send {JSON}")
    body = _parse_json(input_data)
    if not isinstance(body, dict) or "inputs" not in body:
        raise InvalidInput('request body must be a JSON object with "inputs": a headline or a list of headlines')
    inputs = body["inputs"]
    if isinstance(inputs, str):
        return [validate_headline(inputs, '"inputs"')]
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput('"inputs" must be a headline or a non-empty list of headlines')
    if len(inputs) > MAX_HEADLINES:
        raise InvalidInput(f'"inputs" holds {len(inputs)} headlines; send at most {MAX_HEADLINES} per request')
    return [validate_headline(value, f'"inputs"[{i}]') for i, value in enumerate(inputs)]


def _parse_json(data: bytes | str) -> Any:
    """Bad UTF-8, bad JSON, nesting too deep and integers too long to convert all fail here, as InvalidInput."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from exc


def validate_headline(value: Any, where: str = "headline") -> str:
    """A non-blank string of valid Unicode text: a lone UTF-16 surrogate, which JSON allows, breaks the tokenizer."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where} must be a non-empty string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{where} is not valid Unicode text: it holds the lone surrogate "
                           f"U+{ord(value[exc.start]):04X} at character {exc.start}") from exc
    return value


def format_predictions(probabilities: np.ndarray, names: Sequence[str], model_version: str) -> dict[str, Any]:
    """The response body: one label and one score per class name for each headline, and the model version."""
    predictions = [{"label": names[int(row.argmax())],
                    "scores": {name: round(float(p), 6) for name, p in zip(names, row, strict=True)}}
                   for row in probabilities]
    return {"predictions": predictions, "model_version": model_version}


def predict_fn(data: list[str], model: Any, context: Any = None) -> dict[str, Any]:
    """Classify all headlines of the request in one batch."""
    return format_predictions(model.predict_proba(data), model.labels.names, model.metadata["model_version"])


def output_fn(prediction: dict[str, Any], accept: str, context: Any = None) -> str:
    """Serialise as JSON, the only representation offered."""
    if accept and (accept.split(";")[0].strip().lower() not in {JSON, "*/*"}):
        raise InvalidInput(f"unsupported accept type {accept!r}; accept {JSON}")
    return json.dumps(prediction)
