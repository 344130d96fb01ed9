"""The API locustfile's reader, driven task by task against a fake API: no server, no waits.

The API keeps a transaction's first feedback and refuses a different label (409 feedback_exists), so a reader
must never send two different labels for one request id, however often its tasks draw the same transaction.
"""

from __future__ import annotations

import importlib
import itertools
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from loadtest.ledger import Ledger

LABELS = ("Business", "Entertainment", "Health", "Science")


class FakeResponse:
    """What a task reads of an answer given with catch_response=True; failures go to the API's list."""

    def __init__(self, status: int, body: dict[str, Any], failures: list[str]) -> None:
        self.status_code, self._body, self._failures = status, body, failures
        self.content = b"{}"

    def json(self) -> dict[str, Any]:
        return self._body

    def failure(self, message: str) -> None:
        self._failures.append(message)


class FakeApi:
    """The routes a reader calls, with the API's ownership and first-wins feedback; it keeps every label sent."""

    def __init__(self, seed: int = 0) -> None:
        self.random = random.Random(seed)
        self.owners: dict[str, str] = {}  # request id -> the X-Client-Id that classified it
        self.feedback: dict[str, tuple[str, str]] = {}  # request id -> (label, client) of the first feedback
        self.labels_sent: defaultdict[str, list[str]] = defaultdict(list)
        self.failures: list[str] = []

    @contextmanager
    def post(self, path: str, json: dict[str, Any], headers: dict[str, str], **_: Any) -> Iterator[FakeResponse]:
        client = headers["X-Client-Id"]
        if path == "/classify":
            yield self._answer(200, self._prediction(client))
        elif path == "/classify/batch":
            yield self._answer(200, {"results": [self._prediction(client) for _ in json["headlines"]]})
        else:
            request_id = path.removeprefix("/transactions/").removesuffix("/feedback")
            yield self._answer(*self._give_feedback(request_id, json["label"], client))

    @contextmanager
    def get(self, path: str, headers: dict[str, str], **_: Any) -> Iterator[FakeResponse]:
        request_id = path.removeprefix("/transactions/")
        found = self.owners.get(request_id) == headers["X-Client-Id"]
        yield self._answer(200, {"request_id": request_id}) if found else self._answer(404, _error("not_found"))

    def _prediction(self, client: str) -> dict[str, Any]:
        request_id = str(uuid.UUID(int=self.random.getrandbits(128)))
        self.owners[request_id] = client
        return {"request_id": request_id, "label": self.random.choice(LABELS),
                "scores": {label: 0.25 for label in LABELS}}

    def _give_feedback(self, request_id: str, label: str, client: str) -> tuple[int, dict[str, Any]]:
        self.labels_sent[request_id].append(label)
        if self.owners.get(request_id) != client:
            return 404, _error("not_found")
        first = self.feedback.setdefault(request_id, (label, client))
        return (200, {"request_id": request_id, "feedback_label": first[0]}) if first == (label, client) else (
            409, _error("feedback_exists"))

    def _answer(self, status: int, body: dict[str, Any]) -> FakeResponse:
        return FakeResponse(status, body, self.failures)

    def conflicting_labels(self) -> dict[str, set[str]]:
        return {request_id: set(labels) for request_id, labels in self.labels_sent.items() if len(set(labels)) > 1}


def _error(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": code}}


@pytest.fixture(scope="module")
def locustfile() -> ModuleType:
    """The locustfile, imported without Locust's gevent monkey-patching, which would change the whole test process."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCUST_SKIP_MONKEY_PATCH", "1")
        return importlib.import_module("loadtest.locustfile")


@pytest.fixture
def new_reader(locustfile: ModuleType, monkeypatch: pytest.MonkeyPatch,
               tmp_path: Path) -> Callable[[FakeApi], Any]:
    """Readers as Locust starts them (on_start), each talking to the fake API instead of over HTTP."""
    from locust.env import Environment

    headlines = [f"headline {n}" for n in range(50)]
    run = locustfile.Run(headlines, {"X-Run-Id": "unit"}, Ledger("unit"), tmp_path / "ledger.json")
    monkeypatch.setattr(locustfile, "_run", run)
    monkeypatch.setattr(locustfile.NewsReader, "host", "http://api.invalid")
    environment = Environment(user_classes=[locustfile.NewsReader])

    def start(api: FakeApi) -> Any:
        reader = locustfile.NewsReader(environment)
        reader.client = api
        reader.on_start()
        return reader
    return start


@pytest.fixture
def seeded() -> Iterator[None]:
    """The readers' draws (module `random`) the same on every run; the process's state given back afterwards."""
    state = random.getstate()
    random.seed(20260501)
    yield
    random.setstate(state)


@pytest.mark.usefixtures("seeded")
def test_readers_never_send_two_labels_for_one_transaction(locustfile: ModuleType,
                                                           new_reader: Callable[[FakeApi], Any]) -> None:
    api = FakeApi()
    readers = [new_reader(api) for _ in range(4)]
    for _ in range(2000):
        for reader in readers:
            random.choice(locustfile.NewsReader.tasks)(reader)  # Locust's own weighted draw of the next task
    assert any(len(labels) > 1 for labels in api.labels_sent.values()), "no transaction was rated twice"
    assert api.conflicting_labels() == {}
    assert api.failures == []


def test_a_transaction_rated_again_gets_the_same_label_whatever_the_draws(
        locustfile: ModuleType, new_reader: Callable[[FakeApi], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The run that failed: one transaction drawn twice for feedback, confirmed once and corrected the next time."""
    api = FakeApi()
    reader = new_reader(api)
    reader.classify()
    draws = itertools.cycle([0.0, 0.99])  # below FEEDBACK_AGREES: confirm; above: correct
    monkeypatch.setattr(locustfile.random, "random", lambda: next(draws))
    for _ in range(10):
        reader.give_feedback()
    [labels] = api.labels_sent.values()
    assert len(labels) == 10
    assert api.conflicting_labels() == {}
    assert api.failures == []


def test_a_409_the_reader_did_not_cause_stays_a_failure(new_reader: Callable[[FakeApi], Any]) -> None:
    api = FakeApi()
    reader = new_reader(api)
    reader.classify()
    [request_id] = api.owners
    api.feedback[request_id] = (LABELS[0], "someone-else")  # an operator rated it first
    reader.give_feedback()
    assert api.failures == ["409 feedback_exists"]
