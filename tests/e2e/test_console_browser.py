"""The web console in a real browser: Debian's headless Chromium, driven by Playwright, against `make local`.

Playwright's own browser download is never used (`executable_path`); without /usr/bin/chromium the tests skip
and say how to install it. Screenshots go to artifacts/console/ for a person to look at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from model.labels import LabelMap
from model.predict import TorchPredictor
from tests.support.local_stack_testing import REPO_ROOT, RunningStack, request_json, running_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO_ROOT / "artifacts" / "console"
WAIT_MS = 60_000  # an upper bound for the page to show an answer on a busy 2-core machine, not a speed target
INJECTION = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
# Headlines of every length and kind, so that even the tiny model, unsure of all of them, scores them apart.
CANDIDATES = ["Scientists test a new drug for heart disease on mice", "Stocks rally as the Fed holds rates",
              "Star couple announce divorce", "Apple unveils a new iPhone", "Ebola outbreak spreads in West Africa",
              "Oil prices fall again", "Box office hit breaks records", "Bank profits jump on higher rates",
              "NASA probe lands on a comet", "Flu vaccine shortage hits clinics", "Actress wins best film award",
              "Google buys a robot maker", "Shares", "2014", "?!", "Ebola Ebola Ebola Ebola Ebola Ebola",
              "The central bank said on Tuesday that it would keep its main interest rate unchanged for a sixth "
              "month as inflation eased and growth in the euro zone slowed more than economists had expected"]
MIN_GAP = 1e-4  # between the two top scores: a hundred times what batching and the API's rounding (1e-6) move them

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: install Debian's browser with "
                                                      "`apt-get install -y chromium chromium-driver` (.ci/run does)"),
]


@dataclass(frozen=True)
class Certainty:
    """The stack's UNCERTAIN_BELOW, between the top scores of a headline the model is sure of and one it is not."""

    uncertain_below: float
    sure: str
    unsure: str


@pytest.fixture(scope="module")
def certainty(tiny_model_dir: Path) -> Certainty:
    """Where the threshold goes is read from the model the stack serves, so the flag's both outcomes are certain."""
    top = dict(zip(CANDIDATES, TorchPredictor(tiny_model_dir).predict_proba(CANDIDATES).max(axis=1), strict=True))
    sure, unsure = max(top, key=top.get), min(top, key=top.get)
    assert top[sure] - top[unsure] > MIN_GAP, f"the tiny model scores every candidate alike: {top}"
    return Certainty(float(top[sure] + top[unsure]) / 2, sure, unsure)


@pytest.fixture(scope="module")
def stack(tiny_model_dir: Path, certainty: Certainty,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The module's own stack, with an UNCERTAIN_BELOW that the `certainty` headlines fall either side of."""
    with running_stack(tiny_model_dir, tmp_path_factory.mktemp("console_stack"),
                       env={"UNCERTAIN_BELOW": f"{certainty.uncertain_below:.6f}"}) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def dialogs() -> list[str]:
    """Messages of every alert/confirm/prompt the page opened: an injected script would land here."""
    return []


def open_console(browser: Browser, stack: RunningStack, dialogs: list[str], width: int = 1100) -> Page:
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{stack.api_url}/")
    return page


@pytest.fixture
def console(browser: Browser, stack: RunningStack, dialogs: list[str]) -> Iterator[Page]:
    page = open_console(browser, stack, dialogs)
    yield page
    page.context.close()


def classify(page: Page, headline: str) -> str:
    """Type the headline, click Classify, wait for the answer; returns the request id the page shows."""
    previous = page.locator("#result-id").text_content()
    page.get_by_role("textbox", name="Headline", exact=True).fill(headline)
    page.get_by_role("button", name="Classify").click()
    expect(page.locator("#result-id")).not_to_have_text(previous or "", timeout=WAIT_MS)
    return page.locator("#result-id").inner_text()


def traffic_row(page: Page, request_id: str) -> Locator:
    return page.locator(f'#traffic-rows tr[data-request-id="{request_id}"]')


def test_a_headline_shows_its_label_one_bar_per_class_latency_and_request_id(
        console: Page, stack: RunningStack, tiny_model_dir: Path) -> None:
    request_id = classify(console, "Stocks rally as the Fed holds rates")
    names = LabelMap.load(tiny_model_dir).names
    bars = console.locator("#scores li")
    expect(bars).to_have_count(4)
    assert sorted(bars.evaluate_all("rows => rows.map(row => row.dataset.label)")) == sorted(names)
    status, record = request_json(f"{stack.api_url}/transactions/{request_id}")
    assert status == 200
    expect(console.locator("#result-label")).to_have_text(record["label"])
    expect(console.locator("#scores li.top .score-name")).to_have_text(record["label"])
    expect(console.locator("#result-latency")).to_have_text(f"{record['latency_ms']:.0f} ms")
    expect(traffic_row(console, request_id)).to_have_count(1)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console.screenshot(path=str(SCREENSHOTS / "console-desktop.png"), full_page=True)


def test_feedback_changes_the_stored_record_and_the_traffic_row(console: Page, stack: RunningStack) -> None:
    request_id = classify(console, "Ebola outbreak spreads in West Africa")
    predicted = console.locator("#result-label").inner_text()
    other = next(o for o in console.locator("#feedback-label option").all_inner_texts() if o != predicted)
    console.get_by_label("True label").select_option(other)
    console.get_by_role("button", name="Send feedback").click()
    expect(console.locator("#feedback-status")).to_contain_text(other)
    assert request_json(f"{stack.api_url}/transactions/{request_id}")[1]["feedback_label"] == other
    expect(traffic_row(console, request_id).locator("td").last).to_have_text(other)


def test_a_new_request_appears_in_recent_traffic_with_the_label_counts(console: Page) -> None:
    headline = "Apple unveils a new iPhone"
    request_id = classify(console, headline)
    row = traffic_row(console, request_id)
    expect(row).to_have_count(1)
    expect(row.locator("td.headline")).to_have_text(headline)
    expect(row.locator("td").nth(2)).to_have_text(console.locator("#result-label").inner_text())
    expect(console.locator("#traffic-rows tr").first).to_have_attribute("data-request-id", request_id)
    expect(console.locator("#label-counts li")).not_to_have_count(0)


@pytest.mark.parametrize("uncertain", [True, False], ids=["unsure", "sure"])
def test_an_uncertain_answer_says_so_in_the_result_and_in_its_traffic_row(
        console: Page, stack: RunningStack, certainty: Certainty, uncertain: bool) -> None:
    request_id = classify(console, certainty.unsure if uncertain else certainty.sure)
    _, record = request_json(f"{stack.api_url}/transactions/{request_id}")
    assert record["uncertain"] is uncertain, (record["scores"], certainty)
    flag = expect(console.locator("#result-uncertain"))
    if uncertain:
        flag.to_be_visible()
    else:
        flag.to_be_hidden()
    top_score = traffic_row(console, request_id).locator("td").nth(3)
    expect(top_score).to_have_class("number uncertain" if uncertain else "number")


@pytest.mark.parametrize("headline", [INJECTION, "Markets 📈 soar 🚀 after the jobs report",
                                      "ارتفاع أسعار النفط بعد قرار أوبك", "Long " + "x" * 995])
def test_odd_headlines_are_shown_as_text_and_run_nothing(console: Page, dialogs: list[str], headline: str) -> None:
    request_id = classify(console, headline)
    expect(traffic_row(console, request_id).locator("td.headline")).to_have_text(headline)
    assert console.locator("#traffic-rows img, #traffic-rows script").count() == 0
    assert console.locator("#result img, #result script").count() == 0
    assert dialogs == []


def test_errors_show_the_apis_own_message(console: Page) -> None:
    console.get_by_role("textbox", name="Headline", exact=True).fill("x" * 1001)
    console.get_by_role("button", name="Classify").click()
    alert = console.locator("#classify-error")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("'headline' has 1001 characters; the limit is 1000")
    expect(alert).to_contain_text("too_large")
    expect(console.locator("#result")).to_be_hidden()


def test_enter_classifies_from_the_keyboard(console: Page) -> None:
    console.get_by_role("textbox", name="Headline", exact=True).focus()
    console.keyboard.type("Oil prices fall again")
    console.keyboard.press("Enter")
    expect(console.locator("#result")).to_be_visible()
    expect(console.locator("#scores li")).to_have_count(4)


def test_the_api_key_is_sent_and_kept_only_for_the_session(browser: Browser, console: Page, stack: RunningStack,
                                                           dialogs: list[str]) -> None:
    console.get_by_label("API key", exact=True).fill("test-key-123")
    with console.expect_request(lambda request: request.url.endswith("/classify")) as sent:
        classify(console, "Star couple announce divorce")
    assert sent.value.headers.get("x-api-key") == "test-key-123"
    assert console.evaluate("localStorage.length") == 0
    console.reload()
    expect(console.get_by_label("API key", exact=True)).to_have_value("test-key-123")  # same tab: same session
    fresh = open_console(browser, stack, dialogs)
    expect(fresh.get_by_label("API key", exact=True)).to_have_value("")  # another session starts without it
    fresh.context.close()


def test_the_console_fits_a_phone_screen(browser: Browser, stack: RunningStack, dialogs: list[str]) -> None:
    page = open_console(browser, stack, dialogs, width=390)
    try:
        request_id = classify(page, "Scientists find water on Mars " + "and much more " * 20)
        expect(traffic_row(page, request_id)).to_have_count(1)
        expect(page.get_by_role("button", name="Classify")).to_be_enabled()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than a phone screen"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "console-phone.png"), full_page=True)
    finally:
        page.context.close()


# --- the review view -------------------------------------------------------------------------------------------------

REVIEWER = "operator-ann"  # the operator's key id: on the keyless local stage, X-Client-Id stands in for one


@pytest.fixture(scope="module")
def review_stack(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack where every answer is uncertain (UNCERTAIN_BELOW just under 1): each headline sent waits for review."""
    with running_stack(tiny_model_dir, tmp_path_factory.mktemp("review_stack"),
                       env={"UNCERTAIN_BELOW": "0.999999"}) as running:
        yield running


@pytest.fixture
def reviewer(browser: Browser, review_stack: RunningStack, dialogs: list[str]) -> Iterator[Page]:
    """The console as an operator opens it, the review started from the keyboard."""
    page = browser.new_context(viewport={"width": 1100, "height": 900},
                               extra_http_headers={"X-Client-Id": REVIEWER}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{review_stack.api_url}/")
    yield page
    page.context.close()


def send_headlines(stack: RunningStack, headlines: list[str]) -> list[str]:
    status, answer = request_json(f"{stack.api_url}/classify/batch", json.dumps({"headlines": headlines}).encode())
    assert status == 200, answer
    return [result["request_id"] for result in answer["results"]]


def review_queue(stack: RunningStack) -> list[dict[str, Any]]:
    """The queue as the console lists it."""
    status, answer = request_json(f"{stack.api_url}/review?limit=100&days=7")
    assert status == 200, answer
    return answer["entries"]


def start_review(page: Page) -> None:
    page.get_by_role("button", name="Start reviewing").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#review-card")).to_be_focused()


def press(page: Page, key: str, left: int) -> None:
    """Press a review key and wait for the count of what is left to say `left`."""
    page.keyboard.press(key)
    expect(page.locator("#review-left")).to_have_text(re.compile(rf"^{left} left"))


def test_an_operator_labels_20_headlines_by_keyboard_alone(reviewer: Page, review_stack: RunningStack) -> None:
    sent = send_headlines(review_stack, [f"Review headline {n}: markets, movies, medicine or machines?"
                                         for n in range(22)] + ["review HEADLINE 0:  markets, movies, medicine or "
                                                                'machines?"'])
    entries = review_queue(review_stack)
    assert len(entries) >= 22 and len({i for e in entries for i in e["request_ids"]} & set(sent)) == 23
    start_review(reviewer)
    expect(reviewer.locator("#review-headline")).to_have_text(entries[0]["headline"])
    names = sorted(entries[0]["scores"])
    given = []
    for n, entry in enumerate(entries[:20]):
        expect(reviewer.locator("#review-headline")).to_have_text(entry["headline"])
        given.append(names[n % len(names)])
        press(reviewer, str(n % len(names) + 1), len(entries) - n - 1)
    reviewer.keyboard.press("s")  # the next decision saves the 20th label
    expect(reviewer.locator("#review-status")).to_contain_text(f"Saved {given[-1]} for “{entries[19]['headline']}”")

    for entry, label in zip(entries[:20], given, strict=True):
        for request_id in entry["request_ids"]:
            status, record = request_json(f"{review_stack.api_url}/transactions/{request_id}")
            assert status == 200
            assert (record["feedback_label"], record["feedback_source"], record["feedback_by"]) == \
                (label, "review", REVIEWER)
    assert [e["request_ids"] for e in review_queue(review_stack)] == [e["request_ids"] for e in entries[20:]]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    reviewer.screenshot(path=str(SCREENSHOTS / "console-review.png"), full_page=True)


def test_undo_takes_back_the_last_decision_before_it_is_saved_and_skip_stores_nothing(
        reviewer: Page, review_stack: RunningStack) -> None:
    send_headlines(review_stack, [f"Undo headline {n}: a vote, a virus or a video?" for n in range(3)])
    entries = review_queue(review_stack)
    first, second = entries[0], entries[1]
    names = sorted(first["scores"])
    start_review(reviewer)
    left = len(entries)
    press(reviewer, "1", left - 1)
    press(reviewer, "u", left)  # back to the first headline; nothing was stored
    expect(reviewer.locator("#review-headline")).to_have_text(first["headline"])
    press(reviewer, "s", left - 1)
    press(reviewer, "2", left - 2)
    press(reviewer, "u", left - 1)
    expect(reviewer.locator("#review-headline")).to_have_text(second["headline"])
    press(reviewer, "3", left - 2)
    press(reviewer, "s", left - 3)  # saves the label of the second headline
    expect(reviewer.locator("#review-status")).to_contain_text(f"Saved {names[2]} for “{second['headline']}”")
    expect(reviewer.locator("#review-left")).to_contain_text("1 skipped")

    def feedback(entry: dict[str, Any]) -> Any:
        return request_json(f"{review_stack.api_url}/transactions/{entry['request_ids'][0]}")[1].get("feedback_label")

    assert (feedback(first), feedback(second)) == (None, names[2])
    assert first["request_ids"] in [e["request_ids"] for e in review_queue(review_stack)]  # a skip stays queued

