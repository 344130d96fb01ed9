"""The oracle labels what an operator would be shown, through the API's routes: the review queue page by page, or
random transactions; it gives the pool's true labels and accepts that a transaction keeps the (same) first label."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from model.labels import LabelMap
from training_jobs.data import Example, normalise_title
from training_jobs.oracle import (
    REVIEW_PAGE,
    OracleError,
    Sent,
    label_transactions,
    margin_order,
    random_order,
    review_arm,
    send_traffic,
)
from training_jobs.traffic_pool import SEEN_STORY, PoolRow

LABELS = LabelMap.default()


@dataclass
class FakeApi:
    """`Api` with the routes the oracle calls in memory: answers scored by `margins`, the review queue smallest margin
    first (GET /review, at most REVIEW_PAGE a page), first-wins feedback (a 409 `feedback_exists` after)."""

    margins: dict[str, float] = field(default_factory=dict)  # normalised title -> margin of its answer
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, client_id: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        self.calls.append(f"{method} {path.split('?')[0]}")
        if path == "/classify":
            request_id = str(uuid.uuid4())
            margin = self.margins[normalise_title(body["headline"])]
            scores = {"Business": 0.5 + margin / 2, "Science": 0.5 - margin / 2, "Entertainment": 0.0, "Health": 0.0}
            self.records[request_id] = {"headline": body["headline"], "margin": margin, "feedback": None}
            return 200, {"request_id": request_id, "label": "Business", "scores": scores}
        if path.startswith("/review?"):
            limit = int(path.split("limit=")[1].split("&")[0])
            assert limit <= REVIEW_PAGE
            waiting = sorted((r["margin"], rid) for rid, r in self.records.items() if r["feedback"] is None)
            return 200, {"entries": [{"headline": self.records[rid]["headline"], "request_ids": [rid]}
                                     for _, rid in waiting[:limit]]}
        if path == "/review/labels":
            for rid in body["request_ids"]:
                self.records[rid]["feedback"] = body["label"]
            return 200, {"label": body["label"], "labelled": body["request_ids"], "refused": []}
        rid = path.split("/")[2]
        if self.records[rid]["feedback"] is not None:
            return 409, {"error": {"code": "feedback_exists", "message": "already labelled"}}
        self.records[rid]["feedback"] = body["label"]
        return 200, {}


def pool(count: int) -> list[PoolRow]:
    return [PoolRow(Example(f"Headline number {i}", "t" if i % 2 else "m"), SEEN_STORY) for i in range(count)]


def by_title(rows: list[PoolRow]) -> dict[str, PoolRow]:
    return {normalise_title(row.example.title): row for row in rows}


def test_the_review_arm_labels_the_queue_page_by_page_smallest_margin_first_with_true_labels() -> None:
    rows = pool(250)
    api = FakeApi(margins={normalise_title(row.example.title): (i * 37 % 250) / 250 for i, row in enumerate(rows)})
    send_traffic(api, rows)
    order = review_arm(api, by_title(rows), LABELS, budget=230)
    assert len(order) == 230 and api.calls.count("GET /review") == 3  # 100 + 100 + 30
    margins = [api.margins[normalise_title(title)] for title in order]
    assert margins == sorted(margins)  # each page continues where the last one stopped
    labelled = {r["headline"]: r["feedback"] for r in api.records.values() if r["feedback"]}
    truth = {row.example.title: LABELS.name(LABELS.index_of_category(row.example.category)) for row in rows}
    assert labelled == {title: truth[title] for title in order}


def test_the_review_arm_stops_when_the_queue_is_empty() -> None:
    rows = pool(30)
    api = FakeApi(margins={normalise_title(row.example.title): 0.1 for row in rows})
    send_traffic(api, rows)
    assert len(review_arm(api, by_title(rows), LABELS, budget=400)) == 30


def test_a_refused_queue_is_an_error_that_says_so() -> None:
    class NoQueue(FakeApi):
        def call(self, method: str, path: str, client_id: str, body: dict[str, Any] | None = None
                 ) -> tuple[int, Any]:
            return 404, {"error": {"code": "not_found", "message": "no such route"}}

    with pytest.raises(OracleError, match="GET /review answered 404"):
        review_arm(NoQueue(), {}, LABELS, budget=10)


def test_random_labels_keep_a_first_label_and_count_only_their_own() -> None:
    rows = pool(40)
    api = FakeApi(margins={normalise_title(row.example.title): 0.5 for row in rows})
    sent = send_traffic(api, rows)
    review_arm(api, by_title(rows), LABELS, budget=10)
    drawn = random_order(sent, seed=3)[:20]
    already = sum(api.records[item.request_id]["feedback"] is not None for item in drawn)
    assert label_transactions(api, drawn, LABELS) == 20 - already
    assert all(api.records[item.request_id]["feedback"] for item in drawn)


def test_random_orders_are_seeded_and_nest_across_budgets() -> None:
    sent = [Sent(str(i), row, "Business", {}) for i, row in enumerate(pool(60))]
    assert random_order(sent, 1) == random_order(sent, 1) != random_order(sent, 2)
    assert sorted(s.request_id for s in random_order(sent, 1)) == sorted(s.request_id for s in sent)


def test_the_answers_queue_is_uncertain_answers_smallest_margin_first_one_per_headline() -> None:
    row_a, row_b, row_c = pool(3)
    sent = [Sent("1", row_a, "Business", {"Business": 0.55, "Science": 0.45}),
            Sent("2", row_b, "Business", {"Business": 0.95, "Science": 0.05}),  # confident: not queued
            Sent("3", row_c, "Science", {"Business": 0.30, "Science": 0.70}),
            Sent("4", row_a, "Business", {"Business": 0.52, "Science": 0.48})]  # the same headline, sent again
    assert [s.request_id for s in margin_order(sent, uncertain_below=0.9)] == ["4", "3"]
