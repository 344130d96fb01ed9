"""The chaos run's own checks (loadtest/chaos.py): they fail a phase for each way a fault can be mishandled."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from devkit.local_servers import unused_port
from loadtest.chaos import PHASES, PhaseResult, outcome, unsaved_run_ids, wait_for_proxy
from loadtest.ledger import Ledger
from loadtest.reconcile import reconcile
from tests.support.healthy_server import healthy_server

OUTAGE = next(phase for phase in PHASES if phase.outage)


def _result(outcomes: dict[str, int], unsaved: int = 1, retry_after_missing: int = 0,
            recorded: list[str] | None = None) -> PhaseResult:
    ledger = Ledger("run-1")
    ledger.record(2, 200, ["a", "b"])
    result = PhaseResult(OUTAGE, ledger, Counter(outcomes), retry_after_missing=retry_after_missing,
                         unsaved=unsaved)
    result.after_replay = reconcile(ledger, ["a", "b"] if recorded is None else recorded)
    return result


def test_answers_are_counted_by_route_status_and_error_code() -> None:
    assert outcome("classify", 200, {"request_id": "a"}) == "classify 200"
    assert outcome("classify", 503, {"error": {"code": "model_unavailable"}}) == "classify 503 model_unavailable"
    assert outcome("lookup", 0, None) == "lookup 0"


def test_a_phase_with_only_the_answers_its_fault_may_produce_passes() -> None:
    assert _result({"classify 200": 3, "lookup 503 table_unavailable": 1}).problems() == []


@pytest.mark.parametrize(("result", "problem"), [
    (_result({"classify 200": 3, "lookup 503 table_unavailable": 1, "classify 500 internal_error": 1}),
     "unexpected classify 500 internal_error x1"),
    (_result({"classify 200": 3}), "never saw lookup 503 table_unavailable"),
    (_result({"classify 200": 3, "lookup 503 table_unavailable": 1}, retry_after_missing=1), "Retry-After"),
    (_result({"classify 200": 3, "lookup 503 table_unavailable": 1}, unsaved=0), "no transaction_unsaved"),
    (_result({"classify 200": 3, "lookup 503 table_unavailable": 1}, recorded=["a"]), "missing 1"),
], ids=["unexpected-status", "fault-not-seen", "no-retry-after", "fallback-silent", "record-missing"])
def test_each_mishandled_fault_fails_the_phase(result: PhaseResult, problem: str) -> None:
    assert any(problem in found for found in result.problems())


def test_unsaved_events_are_counted_per_run_from_the_api_log(tmp_path: Path) -> None:
    def event(run_id: str) -> str:
        return json.dumps({"level": "ERROR", "message": "transaction_unsaved", "record": {"run_id": run_id}})

    log = tmp_path / "api.log"
    log.write_text("\n".join(["Serving on http://127.0.0.1:8000", event("run-1"), f"prefix {event('run-1')}",
                              event("run-2"), json.dumps({"message": "request", "note": "transaction_unsaved"}),
                              "transaction_unsaved {not json"]) + "\n")
    assert unsaved_run_ids(log) == Counter({"run-1": 2, "run-2": 1})


def test_the_wait_for_the_proxy_returns_once_it_answers_or_refuses_as_asked() -> None:
    """Up: waiting for it to answer returns at once, waiting for it to refuse ends the run at the deadline; closed:
    the other way round."""
    with healthy_server() as up:
        for url, answering in ((up, True), (f"http://127.0.0.1:{unused_port()}", False)):
            wait_for_proxy(url, answering=answering, deadline=time.monotonic() + 0.3)
            with pytest.raises(SystemExit, match="outage"):
                wait_for_proxy(url, answering=not answering, deadline=time.monotonic() + 0.3)
