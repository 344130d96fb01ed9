"""The ledger of a load run: each answer kind counted, the ids an answer names, its file."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from loadtest.ledger import Ledger, classification_ids

RUN = "loadtest-test-run"


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_every_answer_kind_lands_in_its_own_count() -> None:
    ledger = Ledger(RUN)
    ok, batch, failed, refused = _ids(1), _ids(3), _ids(2), _ids(1)
    ledger.record(1, 200, ok)
    ledger.record(3, 200, batch)
    ledger.record(2, 503, failed)  # a model failure still names the stored error transactions
    ledger.record(1, 403, [])  # the gateway's refusal: no record expected
    ledger.record(3, 400, refused)  # refused input: one record for the request, none for each headline
    ledger.record(4, 0, [])  # no HTTP answer: a record possible
    ledger.record(2, 500, [])  # an answer without ids: a record expected
    assert (ledger.sent, ledger.classified, ledger.rejected, ledger.unnamed, ledger.unanswered) == (16, 4, 3, 2, 4)
    assert ledger.request_ids == ok + batch + failed + refused


def test_an_answer_naming_fewer_ids_than_headlines_leaves_the_rest_unnamed() -> None:
    ledger = Ledger(RUN)
    ledger.record(3, 200, _ids(2))
    assert (ledger.classified, ledger.unnamed) == (2, 1)


@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, {"request_id": "a", "label": "x"}, ["a"]),
    (200, {"results": [{"request_id": "a"}, {"request_id": "b"}]}, ["a", "b"]),
    (502, {"error": {"code": "model_error", "message": "m", "request_ids": ["a", "b"]}}, ["a", "b"]),
    (503, {"error": {"code": "table_unavailable", "message": "m"}}, []),
    (500, None, []),
    (200, ["not", "an", "object"], []),
    (502, {"error": {"request_ids": "a"}}, []),
])
def test_classification_ids_reads_successes_and_failures(status: int, body: object, expected: list[str]) -> None:
    assert classification_ids(status, body) == expected


def test_the_ledger_survives_its_file(tmp_path: Path) -> None:
    ledger = Ledger(RUN)
    ledger.record(2, 200, _ids(2))
    ledger.finish()
    ledger.save(tmp_path / "ledger.json")
    assert Ledger.load(tmp_path / "ledger.json") == ledger


@pytest.mark.parametrize("content", ["not json", json.dumps({"run_id": RUN, "colour": "blue"})])
def test_a_file_that_is_not_a_ledger_is_a_clear_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "ledger.json").write_text(content)
    with pytest.raises(ValueError, match="not a ledger"):
        Ledger.load(tmp_path / "ledger.json")
