"""`make export-feedback`: transactions with feedback -> one deduplicated, leakage-free training TSV."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import pytest
from chalicelib import transactions
from chalicelib.callers import Caller

from devkit.stages import CONFIG_FILE, training_keys
from model.labels import LabelMap
from training_jobs.config import split_file
from training_jobs.data import normalise_title, read_examples
from training_jobs.feedback_export import (
    DROP_RULES,
    ExportReport,
    Feedback,
    FeedbackError,
    KeyIds,
    VoteRules,
    build_export,
    held_out_titles,
    main,
    query_feedback,
    window_days,
    write_tsv,
)

LABELS = LabelMap.default()
TABLE = "feedback-export-test"
REVIEWER = Caller("k-reviewer", operator=True)
EVERY_KEY = VoteRules(KeyIds(frozenset(), everyone=True))


def feedback(title: str, label: str, at: str, request_id: str = "", by: str = "") -> Feedback:
    """A label given on day `at` of May 2026 (a one- or two-digit day, or a full ISO time) by key `by`."""
    when = at if "T" in at else f"2026-05-{int(at):02d}T10:00:00.000000+0000"
    return Feedback(request_id or f"id-{title[:8]}-{at}-{by}", title, label, when, by)


def export(items: list[Feedback], held_out: frozenset[str] = frozenset(),
           rules: VoteRules = EVERY_KEY) -> tuple[list, ExportReport]:
    report = ExportReport(table=TABLE, days=[])
    rows = build_export(items, LABELS, set(held_out), report, rules)
    assert report.read == sum(report.dropped.values()) + sum(row.votes for row in rows)  # every label accounted for
    assert list(report.dropped) == list(DROP_RULES)
    return rows, report


def test_one_row_per_normalised_title_with_the_label_most_keys_gave() -> None:
    rows, report = export([feedback("Fed raises rates", "Business", "1", by="k-alice"),
                           feedback('"Fed  raises RATES"', "Science", "3", by="k-carol"),
                           feedback("fed raises rates", "Business", "2", by="k-bob")])
    [row] = rows
    assert (row.category, row.votes, row.title) == ("b", 2, "fed raises rates")  # the latest Business vote's title
    assert (report.read, report.dropped["outvoted"], report.conflicts, report.exported) == (3, 1, 1, 1)


@pytest.mark.parametrize(("science_day", "expected"), [("2", "t"), ("1", "b")])
def test_a_tie_goes_to_the_label_given_last(science_day: str, expected: str) -> None:
    business_day = "2" if science_day == "1" else "1"
    rows, report = export([feedback("New chip doubles battery life", "Business", business_day, by="k-alice"),
                           feedback("New chip doubles battery life", "Science", science_day, by="k-bob")])
    assert [row.category for row in rows] == [expected]
    assert report.conflicts == 1


def test_rows_name_the_keys_behind_their_label_and_a_client_can_be_excluded() -> None:
    items = [feedback("Fed raises rates", "Business", "1", "id-1", by="k-alice"),
             feedback("Fed raises rates", "Business", "2", "id-2", by="k-bob"),
             feedback("Fed raises rates", "Science", "3", "id-3", by="k-mallory"),
             feedback("Ebola outbreak spreads", "Entertainment", "3", "id-4", by="k-mallory")]
    [row, mallory_only] = export(items)[0]
    assert (row.category, row.feedback_by) == ("b", "k-alice,k-bob")
    assert mallory_only.feedback_by == "k-mallory"
    rows, report = export(items, rules=VoteRules(EVERY_KEY.trusted, excluded=frozenset({"k-mallory"})))
    assert [(r.title, r.category, r.votes) for r in rows] == [("Fed raises rates", "b", 2)]
    assert (report.read, report.dropped["excluded_key"], report.conflicts) == (4, 2, 0)


def test_held_out_titles_are_dropped_and_counted() -> None:
    held_out = frozenset({normalise_title("Apple unveils the iPhone 6")})
    rows, report = export([feedback('"Apple unveils  the iPhone 6"', "Science", "1", by="k-alice"),
                           feedback("apple unveils the iphone 6", "Science", "2", by="k-bob"),
                           feedback("Ebola outbreak spreads", "Health", "3", by="k-alice")], held_out)
    assert [row.title for row in rows] == ["Ebola outbreak spreads"]
    assert (report.dropped["held_out"], report.exported, report.categories) == (2, 1, {"m": 1})


def test_label_names_outside_the_label_map_are_counted_not_exported() -> None:
    rows, report = export([feedback("Kim Kardashian wedding", "Gossip", "1", by="k-alice"),
                           feedback("Kim Kardashian wedding", "Entertainment", "2", by="k-bob")])
    assert [(row.category, row.votes) for row in rows] == [("e", 1)]
    assert (report.dropped["unknown_label"], report.conflicts) == (1, 0)


def test_the_tsv_round_trips_through_the_data_reader(tmp_path: Path) -> None:
    titles = ['Apple\'s "iWatch" delayed', "Tabs\tand\u2028separators", "Plain, with a comma"]
    rows, _ = export([feedback(title, name, str(day)) for day, (title, name) in
                      enumerate(zip(titles, ["Science", "Business", "Health"], strict=True), start=1)])
    write_tsv(rows, tmp_path / "feedback.tsv")
    examples = read_examples(tmp_path / "feedback.tsv")
    assert [(ex.category, ex.title) for ex in examples] == [
        ("t", 'Apple\'s "iWatch" delayed'), ("b", "Tabs and separators"), ("m", "Plain, with a comma")]


def test_held_out_titles_are_the_valid_and_test_splits(data_dir: Path) -> None:
    held = held_out_titles(data_dir, seed=13)
    test_title = read_examples(split_file(data_dir, "test"))[0].title
    valid_title = read_examples(split_file(data_dir, "valid"))[0].title
    assert {normalise_title(test_title), normalise_title(valid_title)} <= held
    assert 2500 < len(held) <= 2672


def test_window_is_the_last_n_utc_days() -> None:
    assert window_days(3, dt.date(2026, 3, 1)) == ["2026-03-01", "2026-02-28", "2026-02-27"]
    with pytest.raises(FeedbackError, match="at least 1"):
        window_days(0, dt.date(2026, 3, 1))


def _classified(headline: str, label: str, created_at: dt.datetime, feedback_label: str | None) -> str:
    request_id = transactions.new_request_id()
    scores = {name: 0.25 for name in LABELS.names}
    record = transactions.build_record(transactions.Outcome(request_id, headline, 12.0, label=label, scores=scores,
                                                            model_version="news-test"),
                                       created_at, "news-classifier", None)
    assert transactions.save([record])
    if feedback_label:
        transactions.record_feedback(REVIEWER, request_id, feedback_label)
    return request_id


def test_export_queries_the_day_index_over_the_window_and_never_scans(
        transaction_table: str, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = dt.datetime.now(dt.UTC)
    test_title = read_examples(split_file(data_dir, "test"))[0].title
    _classified("Brent crude falls below $100", "Science", now, "Business")
    last_vote = _classified("Brent  crude falls below $100", "Business", now - dt.timedelta(days=1), "Business")
    _classified("Ebola vaccine trial begins", "Health", now, None)  # no feedback: filtered out
    _classified(test_title, "Business", now, "Science")  # a held-out title: must not leak
    _classified("Old story from last month", "Business", now - dt.timedelta(days=10), "Health")  # outside window

    client = boto3.client("dynamodb")
    operations: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: operations.append(model.name))
    days = window_days(3, now.date())
    assert len(list(query_feedback(client, transaction_table, days))) == 3
    assert set(operations) == {"Query"}

    output = tmp_path / "feedback.tsv"
    assert main(["--table", transaction_table, "--days", "3", "--data", str(data_dir), "--output", str(output)]) == 0
    assert "3 label(s) read; labels of every key may train" in capsys.readouterr().out  # the local stage's operators
    [example] = read_examples(output)
    assert (example.category, example.title) == ("b", "Brent crude falls below $100")
    assert last_vote in output.read_text()  # provenance: the request of the latest vote and who gave it
    assert "k-reviewer" in output.read_text()
    report = json.loads((tmp_path / "feedback.report.json").read_text())
    assert {k: report[k] for k in ("read", "conflicts", "exported")} == {"read": 3, "conflicts": 0, "exported": 1}
    assert report["dropped"] == {**dict.fromkeys(DROP_RULES, 0), "held_out": 1, "repeat_vote": 1}


def test_a_missing_table_is_an_error_message_not_a_traceback(
        moto_url: str, aws_credentials: None, monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    assert main(["--table", "absent", "--data", str(data_dir), "--output", str(tmp_path / "f.tsv")]) == 1
    assert "reading the transaction table failed" in capsys.readouterr().err
    assert main(["--table", "absent", "--days", "0", "--output", str(tmp_path / "f.tsv")]) == 2
    assert "--days must be at least 1" in capsys.readouterr().err
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    assert main(["--local-state-dir", str(tmp_path), "--data", str(data_dir), "--output", str(tmp_path / "f.tsv")]) == 2
    assert "is `make local` running" in capsys.readouterr().err


def test_one_key_labelling_many_copies_of_a_headline_is_one_vote() -> None:
    """The stuffing the rules exist for: one key sends a headline ten times and labels every copy; two other keys
    label it once each. Counting transactions, the stuffer wins 10 to 2; counting keys, it loses 1 to 2."""
    stuffed = [feedback("Fed raises rates", "Science", f"2026-05-03T10:00:{n:02d}.000000+0000", by="k-mallory")
               for n in range(10)]
    honest = [feedback("Fed raises rates", "Business", "1", by="k-alice"),
              feedback("Fed raises rates", "Business", "2", by="k-bob")]
    [row], report = export(stuffed + honest)
    assert (row.category, row.votes, row.feedback_by) == ("b", 2, "k-alice,k-bob")
    assert (report.dropped["repeat_vote"], report.dropped["outvoted"], report.conflicts) == (9, 1, 1)


def test_a_key_that_changes_its_mind_votes_with_its_latest_label() -> None:
    [row], report = export([feedback("New chip doubles battery life", "Business", "1", by="k-alice"),
                            feedback("New chip doubles battery life", "Science", "2", by="k-alice")])
    assert (row.category, row.votes) == ("t", 1)
    assert (report.dropped["repeat_vote"], report.conflicts) == (1, 0)


def test_one_key_counts_for_at_most_its_first_n_titles() -> None:
    flood = [feedback(f"Headline number {n}", "Health", str(1 + n), by="k-mallory") for n in range(5)]
    rows, report = export([*flood, feedback("Ebola outbreak spreads", "Health", "9", by="k-alice")],
                          rules=VoteRules(EVERY_KEY.trusted, max_labels_per_key=2))
    assert [row.title for row in rows] == ["Headline number 0", "Headline number 1", "Ebola outbreak spreads"]
    assert report.dropped["over_key_cap"] == 3


def test_only_the_keys_the_stage_trusts_may_train() -> None:
    items = [feedback("Fed raises rates", "Business", "1", by="k-reviewer"),
             feedback("Fed raises rates", "Science", "2", by="k-client"),
             feedback("Fed raises rates", "Science", "3", by="k-other-client"),
             feedback("Ebola outbreak spreads", "Health", "4", by="")]  # no key recorded
    rows, report = export(items, rules=VoteRules(KeyIds(frozenset({"k-reviewer"}), everyone=False)))
    assert [(row.title, row.category, row.votes) for row in rows] == [("Fed raises rates", "b", 1)]
    assert report.dropped["untrusted_key"] == 3


def with_stage_keys(tmp_path: Path, variables: dict[str, str]) -> Path:
    """A copy of the project's Chalice config whose dev stage sets these variables."""
    config = json.loads(CONFIG_FILE.read_text())
    config["stages"]["dev"]["environment_variables"].update(variables)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path / "config.json"


def test_a_stage_trusts_its_operators_and_reviewers_unless_it_names_its_training_keys(tmp_path: Path) -> None:
    assert training_keys("local").everyone  # the local stage: every caller is an operator
    assert training_keys("dev") == KeyIds(frozenset(), everyone=False)  # no operators named: nobody trains
    roles = with_stage_keys(tmp_path, {"OPERATOR_KEY_IDS": "k-ops", "REVIEWER_KEY_IDS": "k-rev1, k-rev2"})
    assert training_keys("dev", roles) == KeyIds(frozenset({"k-ops", "k-rev1", "k-rev2"}), everyone=False)
    named = with_stage_keys(tmp_path, {"OPERATOR_KEY_IDS": "k-ops", "TRAINING_KEY_IDS": "k-labellers"})
    assert training_keys("dev", named) == KeyIds(frozenset({"k-labellers"}), everyone=False)
    assert "k-ops" not in training_keys("dev", named)
    with pytest.raises(ValueError, match="stage 'dev': REVIEWER_KEY_IDS='k1,\\*'"):
        training_keys("dev", with_stage_keys(tmp_path, {"REVIEWER_KEY_IDS": "k1,*"}))


def test_the_cli_refuses_a_cap_below_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--table", "t", "--max-labels-per-key", "0", "--output", str(tmp_path / "f.tsv")]) == 2
    assert "--max-labels-per-key must be at least 1" in capsys.readouterr().err
