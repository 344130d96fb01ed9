"""The model server refuses every body it cannot classify as a 400 `InvalidInput`, never a 500: text that is not
Unicode (lone surrogates), JSON nested too deeply, integers too long to convert; and it classifies every body the
contract allows. Property-based over the text, each example checked against the contract written out in
tests/support/text_strategies.py."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.labels import LabelMap
from model.serving.inference import MAX_HEADLINES, InvalidInputError, input_fn
from model.tools.local_endpoint import running_endpoint
from tests.support.text_strategies import headline_texts, model_server_accepts
from tests.support.untrained_model import untrained_model_folder

FUZZ = settings(max_examples=80, deadline=None, derandomize=True)
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | headline_texts(),
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.sampled_from(["inputs", "x"]), children, max_size=2), max_leaves=12)
# Bodies of the documented shape too, so that a good share of the examples must be accepted.
REQUEST_BODIES = JSON_VALUES | st.fixed_dictionaries(
    {"inputs": headline_texts() | st.lists(headline_texts(), max_size=4)})


@pytest.mark.parametrize(("body", "reason"), [
    ('{"inputs": "Stocks \\ud800 rally"}', "not valid Unicode text"),
    ('{"inputs": ["ok", "\\udfff"]}', r'"inputs"\[1\] is not valid Unicode text'),
    ('{"inputs": ' + "[" * 100_000 + "]" * 100_000 + "}", "not valid JSON"),
    ('{"inputs": ' + "1" * 5000 + "}", "not valid JSON"),
    ('{"inputs": [' + "1" * 5000 + "]}", "not valid JSON"),
    (b'{"inputs": "\xed\xa0\x80"}', "not valid Unicode text"),  # json.loads lets encoded surrogates pass
])
def test_input_fn_refuses_what_it_cannot_classify(body: str | bytes, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        input_fn(body, "application/json")


def expected_headlines(body: Any) -> list[str] | None:
    """The contract of a JSON body: `{"inputs": headline}` or `{"inputs": [1 to MAX_HEADLINES headlines]}`, every
    headline accepted; None: the body must be refused."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    headlines = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(headlines, list) or not 1 <= len(headlines) <= MAX_HEADLINES:
        return None
    if not all(isinstance(h, str) and model_server_accepts(h) for h in headlines):
        return None
    return headlines


@FUZZ
@given(value=REQUEST_BODIES)
def test_input_fn_returns_the_headlines_of_a_valid_body_and_refuses_every_other(value: Any) -> None:
    expected = expected_headlines(json.loads(json.dumps(value)))  # as the server decodes it: surrogate pairs joined
    if expected is None:
        with pytest.raises(InvalidInputError):
            input_fn(json.dumps(value), "application/json")
    else:
        assert input_fn(json.dumps(value), "application/json") == expected


def _post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
@FUZZ
@given(headlines=st.lists(headline_texts(), min_size=1, max_size=4))
def test_the_server_answers_valid_text_and_refuses_the_rest_as_invalid_input(endpoint_url: str,
                                                                              headlines: list[str]) -> None:
    body = json.dumps({"inputs": headlines}).encode()
    valid = all(model_server_accepts(h) for h in json.loads(body)["inputs"])  # surrogate pairs joined in transit
    status, answer = _post(f"{endpoint_url}/invocations", body)
    if valid:
        assert status == 200, answer
        assert len(answer["predictions"]) == len(headlines)
    else:
        assert (status, answer["type"]) == (400, "InvalidInput")
    runtime_status, runtime_answer = _post(f"{endpoint_url}/endpoints/news-classifier/invocations", body)
    # SageMaker Runtime wraps the container's refusal in a 424 ModelError that carries the original 400
    assert (runtime_status, runtime_answer.get("OriginalStatusCode")) == ((200, None) if valid else (424, 400))


def test_the_server_starts_and_answers_from_a_folder_built_without_training(tiny_encoder_dir: Path,
                                                                           tmp_path: Path) -> None:
    """The fast tests' one server start (their only one on the macOS runner, where no model is trained): the real
    `python -m model.serving.server` on a free port, loading a folder built here, answers one headline."""
    folder = untrained_model_folder(tiny_encoder_dir, tmp_path / "model")
    started = time.monotonic()
    with running_endpoint(folder, startup_timeout_s=60) as url:
        status, answer = _post(f"{url}/invocations", json.dumps({"inputs": "Fed holds rates as stocks rally"}).encode())
    assert status == 200, answer
    (prediction,) = answer["predictions"]
    assert prediction["label"] in LabelMap.default().names
    assert sum(prediction["scores"].values()) == pytest.approx(1, abs=1e-4)
    assert answer["model_version"] == "untrained-tiny"
    assert time.monotonic() - started < 60
