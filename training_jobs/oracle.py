"""The simulated week's people, through the API as they would use it: clients send the pool's headlines as traffic,
and an oracle operator labels what it is shown with the pool's true labels.

Two ways of choosing what to label at a budget of k labels:

- `review`: the review queue, `GET /review` (operators only), page by page: the oracle labels each page with
  `POST /review/labels` (one label for every request id of an entry), so those leave the queue and the next page
  holds the next smallest margins. The order it labelled in is recorded: its first k are the review arm at k.
  Where the API has no review queue yet, `--queue answers` ranks the answers the traffic got by the same rule
  (uncertain ones, smallest margin between the two top scores first, one per headline) and labels them with the
  feedback route: the same choice, made from the clients' side.
- `random`: k transactions drawn at random from the week's traffic (a seeded permutation: its first k at each k),
  labelled with `POST /transactions/{id}/feedback`.

Labels are the same whichever arm gives them (the true ones), so all arms are labelled into one table; each arm's
training rows are then its own first k titles of the one export (`make export-feedback`).
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from model.labels import LabelMap
from training_jobs.data import normalise_title
from training_jobs.traffic_pool import PoolRow

REVIEW_PAGE = 100  # GET /review's largest limit
TRAFFIC_CLIENT, ORACLE_CLIENT = "traffic", "oracle"
FEEDBACK_EXISTS = "feedback_exists"


class OracleError(RuntimeError):
    """The API refused what a client or the oracle sent; the message says what and why."""


@dataclass(frozen=True)
class Api:
    """The API's base URL and how a caller names itself (X-Client-Id on a keyless stage, or an API key)."""

    url: str
    api_key: str | None = None

    def call(self, method: str, path: str, client_id: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "X-Client-Id": client_id,
                   **({"X-Api-Key": self.api_key} if self.api_key else {})}
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@dataclass(frozen=True)
class Sent:
    """One headline of the pool as the API answered it."""

    request_id: str
    row: PoolRow
    label: str
    scores: dict[str, float]


def send_traffic(api: Api, rows: Iterable[PoolRow], progress: Callable[[int], None] = lambda n: None) -> list[Sent]:
    """POST /classify for each row, in order; every answer must be a classification."""
    sent = []
    for row in rows:
        status, body = api.call("POST", "/classify", TRAFFIC_CLIENT, {"headline": row.example.title})
        if status != 200:
            raise OracleError(f"POST /classify answered {status} for {row.example.title!r}: {body}")
        sent.append(Sent(body["request_id"], row, body["label"], body["scores"]))
        progress(len(sent))
    return sent


def label_name(row: PoolRow, labels: LabelMap) -> str:
    return labels.name(labels.index_of_category(row.example.category))


def review_arm(api: Api, by_title: dict[str, PoolRow], labels: LabelMap, budget: int, days: int = 1) -> list[str]:
    """Label the review queue page by page until `budget` headlines are labelled or it is empty; the titles in the
    order labelled."""
    order: list[str] = []
    while len(order) < budget:
        limit = min(REVIEW_PAGE, budget - len(order))
        status, body = api.call("GET", f"/review?limit={limit}&days={days}", ORACLE_CLIENT)
        if status != 200:
            raise OracleError(f"GET /review answered {status}: {body}")
        if not body["entries"]:
            break
        for entry in body["entries"]:
            row = by_title[normalise_title(entry["headline"])]
            status, answer = api.call("POST", "/review/labels", ORACLE_CLIENT,
                                      {"label": label_name(row, labels), "request_ids": entry["request_ids"]})
            if status != 200 or answer["refused"]:
                raise OracleError(f"POST /review/labels answered {status}: {answer}")
            order.append(row.example.title)
    return order


def margin(scores: dict[str, float]) -> float:
    top, second = sorted(scores.values(), reverse=True)[:2]
    return top - second


def margin_order(sent: Sequence[Sent], uncertain_below: float) -> list[Sent]:
    """What GET /review lists, ranked from the answers: uncertain ones (top score below the threshold), smallest
    margin first, the first request of each normalised headline."""
    ranked, seen = [], set()
    for item in sorted((s for s in sent if s.scores[s.label] < uncertain_below), key=lambda s: margin(s.scores)):
        key = normalise_title(item.row.example.title)
        if key not in seen:
            seen.add(key)
            ranked.append(item)
    return ranked


def random_order(sent: Sequence[Sent], seed: int) -> list[Sent]:
    """The week's transactions in a seeded random order: the random arm labels a prefix of it."""
    order = list(sent)
    random.Random(seed).shuffle(order)
    return order


def label_transactions(api: Api, chosen: Iterable[Sent], labels: LabelMap) -> int:
    """POST feedback with the true label on each; a transaction the review arm labelled already keeps that (the
    same) label. Returns how many were labelled here."""
    labelled = 0
    for item in chosen:
        status, body = api.call("POST", f"/transactions/{item.request_id}/feedback", ORACLE_CLIENT,
                                {"label": label_name(item.row, labels)})
        if status == 409 and body["error"]["code"] == FEEDBACK_EXISTS:
            continue
        if status != 200:
            raise OracleError(f"POST feedback on {item.request_id} answered {status}: {body}")
        labelled += 1
    return labelled
