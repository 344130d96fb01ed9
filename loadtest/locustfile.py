"""Production-like traffic against the news classifier API, with an account of every headline sent.

    locust -f loadtest/locustfile.py --headless -u 32 -r 32 -t 60s --host http://127.0.0.1:8000

Every id an answer names, of successes and failures alike, goes to the ledger that `loadtest.reconcile` checks
against the table (docs/load-testing.md).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locust import FastHttpUser, events, task
from locust.env import Environment

from devkit.news_files import read_headlines
from devkit.repo import REPO_ROOT
from loadtest.common import FinishesItsWait, add_common_arguments, pacing, save_final_stats
from loadtest.ledger import Ledger, classification_ids

BATCH_SIZES = (2, 16)  # headlines per batch request, drawn uniformly
FEEDBACK_AGREES = 0.9  # share of transactions whose reader confirms the model's label; it corrects the rest
REMEMBERED = 200  # transactions per user kept for look-ups and feedback
RUN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # X-Run-Id as openapi.yaml documents it


@dataclass(frozen=True)
class Transaction:
    """A transaction a reader remembers, with the one label it gives whenever it rates it.

    The label is drawn once, when the answer comes: the API keeps the first feedback and refuses a different one
    (409 feedback_exists), so a reader that draws the same transaction again sends the same label again, a retry
    the API answers 200 with the record as it stands.
    """

    request_id: str
    feedback: str | None  # None: the classification failed, there is nothing to give feedback on


@dataclass
class Run:
    """What every user of this process shares: headlines, request headers and the ledger."""

    headlines: list[str]
    headers: dict[str, str]
    ledger: Ledger
    ledger_path: Path


_run: Run | None = None


def new_run_id() -> str:
    return f"locust-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    add_common_arguments(parser)
    parser.add_argument("--run-id", default=new_run_id(), env_var="LOADTEST_RUN_ID",
                       help="X-Run-Id of every request (1-64 of A-Z a-z 0-9 . _ : -); default: a new one")
    parser.add_argument("--api-key", default="", env_var="LOADTEST_API_KEY", is_secret=True,
                       help="sent as x-api-key when set (the dev and prod stages require one)")
    parser.add_argument("--ledger", type=Path, default=REPO_ROOT / "artifacts" / "loadtest" / "ledger.json",
                       env_var="LOADTEST_LEDGER", help="where the run's account of sent headlines is written")


@events.init.add_listener
def _prepare(environment: Environment, **_: Any) -> None:
    global _run
    options = environment.parsed_options
    if not RUN_ID.fullmatch(options.run_id):
        raise ValueError(f"--run-id {options.run_id!r}: use 1-64 characters of A-Z a-z 0-9 . _ : -")
    NewsReader.wait_time = pacing(options.user_rate)
    headers = {"X-Run-Id": options.run_id, **({"x-api-key": options.api_key} if options.api_key else {})}
    _run = Run(read_headlines(options.headlines), headers, Ledger(options.run_id), options.ledger)


@events.test_start.add_listener
def _start_ledger(environment: Environment, **_: Any) -> None:
    run = _current_run()
    run.ledger = Ledger(run.ledger.run_id)


events.test_stop.add_listener(save_final_stats)


@events.test_stop.add_listener
def _save_ledger(environment: Environment, **_: Any) -> None:
    run = _current_run()
    run.ledger.finish()
    run.ledger.save(run.ledger_path)


def _current_run() -> Run:
    if _run is None:
        raise RuntimeError("the locustfile was not initialised (Locust's init event has not run)")
    return _run


def _json(response: Any) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def _error_code(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code")) if isinstance(error, dict) else "no error body"


class NewsReader(FinishesItsWait, FastHttpUser):
    """One client of the API: classifies headlines, then reads and corrects some of its own transactions."""

    def on_start(self) -> None:
        self.run = _current_run()
        self.transactions: deque[Transaction] = deque(maxlen=REMEMBERED)
        # One reader, one client id: under an A/B test (MODEL_VARIANTS) each reader sticks to its variant.
        self.headers = {**self.run.headers, "X-Client-Id": f"reader-{uuid.uuid4().hex[:12]}"}

    @task(80)
    def classify(self) -> None:
        self._classify("/classify", [random.choice(self.run.headlines)])

    @task(5)
    def classify_batch(self) -> None:
        self._classify("/classify/batch", random.sample(self.run.headlines, random.randint(*BATCH_SIZES)))

    @task(10)
    def look_up(self) -> None:
        if not self.transactions:
            return self.classify()
        transaction = random.choice(self.transactions)
        with self.client.get(f"/transactions/{transaction.request_id}", name="/transactions/{request_id}",
                             headers=self.headers, catch_response=True) as response:
            body = _json(response)
            if response.status_code != 200 or not isinstance(body, dict):
                response.failure(f"{response.status_code} {_error_code(body)}")
            elif body.get("request_id") != transaction.request_id:
                response.failure(f"asked for {transaction.request_id}, got {body.get('request_id')}")

    @task(5)
    def give_feedback(self) -> None:
        answered = [t for t in self.transactions if t.feedback is not None]
        if not answered:
            return self.classify()
        transaction = random.choice(answered)
        with self.client.post(f"/transactions/{transaction.request_id}/feedback", json={"label": transaction.feedback},
                              name="/transactions/{request_id}/feedback", headers=self.headers,
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {_error_code(_json(response))}")

    def _classify(self, path: str, headlines: list[str]) -> None:
        """One classification request; its outcome goes to the ledger even when the user is stopped mid-way."""
        body = {"headline": headlines[0]} if path == "/classify" else {"headlines": headlines}
        accounted = False
        try:
            with self.client.post(path, json=body, headers=self.headers, catch_response=True) as response:
                status, answer = response.status_code or 0, _json(response)
                ids = classification_ids(status, answer)
                self.run.ledger.record(len(headlines), status, ids)
                accounted = True
                self._remember(status, answer, ids)
                if status != 200:
                    response.failure(f"{status} {_error_code(answer)}")
                elif len(ids) != len(headlines):
                    response.failure(f"{len(headlines)} headline(s) sent, {len(ids)} request id(s) answered")
        finally:
            if not accounted:  # Locust stopped the user mid-request: the API may or may not have got it
                self.run.ledger.record(len(headlines), 0, [])

    def _remember(self, status: int, answer: Any, ids: list[str]) -> None:
        if status == 200:
            results = answer.get("results", [answer])
            self.transactions.extend(Transaction(r["request_id"], _verdict(r.get("label"), r.get("scores") or {}))
                                     for r in results if isinstance(r, dict) and r.get("request_id") in ids)
        else:
            self.transactions.extend(Transaction(request_id, None) for request_id in ids)


def _verdict(label: str | None, scores: dict[str, float]) -> str | None:
    """The label a reader gives a prediction: mostly the model's own, else another label the model scored."""
    others = [other for other in scores if other != label]
    if label is None or random.random() < FEEDBACK_AGREES or not others:
        return label
    return random.choice(others)
