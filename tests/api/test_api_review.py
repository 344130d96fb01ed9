"""The review queue (GET /review) and its labels (POST /review/labels): operators only; uncertain answers not yet
labelled, smallest margin first, one entry per normalised headline; one label for all of an entry's requests,
stored as feedback with source `review`, first-wins; read from the sparse review index, never more than needed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client
from chalicelib import review, transactions, validation

from tests.support.api_testing import OPERATOR, FakeEndpoint, Reply, assert_documented, body_of, post_json

# Scores below the default UNCERTAIN_BELOW (0.6) unless said: margins 0.05, 0.30, 0.10; the last is certain.
NARROW = {"Science": 0.40, "Health": 0.35, "Business": 0.15, "Entertainment": 0.10}
WIDE = {"Business": 0.55, "Science": 0.25, "Health": 0.15, "Entertainment": 0.05}
MIDDLE = {"Health": 0.45, "Science": 0.35, "Business": 0.10, "Entertainment": 0.10}
CERTAIN = {"Entertainment": 0.90, "Business": 0.05, "Science": 0.03, "Health": 0.02}


def classify(client: Client, fake: FakeEndpoint, answers: list[tuple[str, dict[str, float]]],
             headers: dict[str, str] | None = None) -> list[str]:
    """Send the headlines as one batch, the fake model answering each with its scores; their request ids."""
    predictions = [{"label": max(scores, key=scores.__getitem__), "scores": scores} for _, scores in answers]
    fake.answer(Reply(body=json.dumps({"predictions": predictions, "model_version": "fake-7"}).encode()))
    response = post_json(client, "/classify/batch", {"headlines": [h for h, _ in answers]}, headers)
    assert response.status_code == 200, response.body
    return [result["request_id"] for result in body_of(response)["results"]]


def test_uncertain_answers_are_listed_smallest_margin_first_one_entry_per_headline(
        client: Client, table: str, fake_endpoint: FakeEndpoint, openapi: dict) -> None:
    ids = classify(client, fake_endpoint, [("Phone maker sues rival", WIDE), ("Gene study surprises", NARROW),
                                           ("Festival opens", CERTAIN), ('  GENE  study "surprises" ', NARROW),
                                           ("Clinic trial pauses", MIDDLE)])
    response = client.http.get("/review")
    assert_documented(openapi, "/review", "GET", response)
    entries = body_of(response)["entries"]
    assert [(review.normalised(e["headline"]), e["margin"], e["label"]) for e in entries] == [
        ("gene study surprises", 0.05, "Science"), ("clinic trial pauses", 0.1, "Health"),
        ("phone maker sues rival", 0.3, "Business")]  # the entry shows one of its requests' text, as sent
    assert sorted(entries[0]["request_ids"]) == sorted([ids[1], ids[3]])  # the same headline once normalised
    assert entries[0]["scores"] == NARROW and entries[0]["model_version"] == "fake-7"
    assert ids[2] not in {i for e in entries for i in e["request_ids"]}  # a certain answer is not in the queue
    assert body_of(client.http.get("/review?limit=2"))["entries"] == entries[:2]


def test_one_label_labels_every_request_of_an_entry_as_review_feedback_first_wins(
        keyed_client: Client, table: str, fake_endpoint: FakeEndpoint, openapi: dict) -> None:
    operator = {"X-Client-Id": OPERATOR}
    ids = classify(keyed_client, fake_endpoint, [("Gene study surprises", NARROW), ("gene study surprises", NARROW),
                                                 ("Clinic trial pauses", MIDDLE)], {"X-Client-Id": "newsroom"})
    [first, second] = body_of(keyed_client.http.get("/review", headers=operator))["entries"]
    response = post_json(keyed_client, "/review/labels", {"label": "Health", "request_ids": first["request_ids"]},
                         operator)
    assert_documented(openapi, "/review/labels", "POST", response)
    assert body_of(response) == {"label": "Health", "labelled": first["request_ids"], "refused": []}
    for request_id in ids[:2]:
        stored = body_of(keyed_client.http.get(f"/transactions/{request_id}", headers=operator))
        assert (stored["feedback_label"], stored["feedback_by"], stored["feedback_source"]) == \
            ("Health", OPERATOR, "review")
        assert "review_day" not in stored and "review_margin" not in stored  # it left the review index
    assert body_of(keyed_client.http.get("/review", headers=operator))["entries"] == [second]

    again = post_json(keyed_client, "/review/labels", {"label": "Health", "request_ids": ids[:2]}, operator)
    assert body_of(again)["labelled"] == ids[:2]  # a repeated call is a retry: the label stands as given
    other = body_of(post_json(keyed_client, "/review/labels", {"label": "Science", "request_ids": [ids[0]]}, operator))
    assert (other["labelled"], [r["code"] for r in other["refused"]]) == ([], ["feedback_exists"])
    client_feedback = post_json(keyed_client, f"/transactions/{ids[1]}/feedback", {"label": "Science"},
                                {"X-Client-Id": "newsroom"})
    assert body_of(client_feedback)["error"]["code"] == "feedback_exists"  # the first feedback stands, either door


def test_feedback_from_the_client_takes_a_record_out_of_the_queue(
        client: Client, table: str, fake_endpoint: FakeEndpoint) -> None:
    [narrow, wide] = classify(client, fake_endpoint, [("Gene study surprises", NARROW), ("Phone maker sues", WIDE)])
    stored = body_of(post_json(client, f"/transactions/{narrow}/feedback", {"label": "Science"}))
    assert stored["feedback_source"] == "api"
    assert [e["request_ids"] for e in body_of(client.http.get("/review"))["entries"]] == [[wide]]


def test_labels_refused_per_id_name_why_and_the_rest_are_stored(
        client: Client, table: str, fake_endpoint: FakeEndpoint, openapi: dict) -> None:
    [narrow, certain] = classify(client, fake_endpoint, [("Gene study surprises", NARROW), ("Festival", CERTAIN)])
    missing = transactions.new_request_id()
    response = post_json(client, "/review/labels", {"label": "Science", "request_ids": [missing, narrow, narrow]})
    assert_documented(openapi, "/review/labels", "POST", response)
    answer = body_of(response)
    assert answer["labelled"] == [narrow]  # a repeated id counts once
    assert [(r["request_id"], r["code"]) for r in answer["refused"]] == [(missing, "not_found")]
    unknown = body_of(post_json(client, "/review/labels", {"label": "Sport", "request_ids": [certain]}))
    assert [r["code"] for r in unknown["refused"]] == ["unknown_label"]


@pytest.mark.parametrize("method,path,body", [("GET", "/review", None),
                                              ("POST", "/review/labels", {"label": "Health", "request_ids": []})])
def test_other_keys_are_refused(keyed_client: Client, table: str, openapi: dict, method: str, path: str,
                                body: Any) -> None:
    headers = {"X-Client-Id": "newsroom", "Content-Type": "application/json"}
    response = keyed_client.http.request(method, path, headers=headers, body=json.dumps(body) if body else b"")
    assert_documented(openapi, path, method, response)
    assert (response.status_code, body_of(response)["error"]["code"]) == (403, "forbidden")


@pytest.mark.parametrize("query", ["limit=0", f"limit={validation.MAX_REVIEW_LIMIT + 1}", "days=0",
                                   f"days={validation.MAX_REVIEW_DAYS + 1}", "days=abc", "days=%C2%B2", "size=3"])
def test_bad_review_queries_are_400s(client: Client, table: str, openapi: dict, query: str) -> None:
    response = client.http.get(f"/review?{query}")
    assert_documented(openapi, "/review", "GET", response)
    assert (response.status_code, body_of(response)["error"]["code"]) == (400, "invalid_request")


@pytest.mark.parametrize("body,status", [
    ({"label": "Health"}, 400), ({"request_ids": ["x"]}, 400), ({"label": "Health", "request_ids": "x"}, 400),
    ({"label": "Health", "request_ids": []}, 400), ({"label": " ", "request_ids": [None]}, 400),
    ({"label": "Health", "request_ids": ["not-a-uuid"]}, 400), ({"label": "", "request_ids": ["x"], "x": 1}, 400),
    ({"label": "Health", "request_ids": [str(n) for n in range(validation.MAX_REVIEW_IDS + 1)]}, 413)])
def test_bad_label_requests_are_refused_before_any_write(client: Client, table: str, openapi: dict,
                                                         body: dict[str, Any], status: int) -> None:
    response = post_json(client, "/review/labels", body)
    assert_documented(openapi, "/review/labels", "POST", response)
    assert response.status_code == status, response.body
