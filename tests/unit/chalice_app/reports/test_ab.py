"""`make ab-report` on synthetic traffic: a clearly better variant wins, identical variants do not differ, too
little feedback says so, and the command reads a window of the real table through the day index."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from chalicelib import transactions

from chalice_app.chalicelib import model_client
from chalice_app.reports.ab import main
from chalice_app.reports.ab_stats import AbThresholds, Observation, build_report
from chalice_app.reports.stage_table import ReportError
from devkit.stages import stage_environment

LABELS = ["Business", "Entertainment", "Health", "Science"]
NOW = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)


def traffic(endpoint: str, n: int, accuracy: float, seed: int, *, feedback_share: float = 1.0,
            latency_ms: float = 20.0, error_rate: float = 0.0) -> list[Observation]:
    """n transactions of one variant: uniform labels, right with probability `accuracy` where feedback exists."""
    rng = np.random.default_rng(seed)
    observations = []
    for _ in range(n):
        if rng.random() < error_rate:
            observations.append(Observation(endpoint, None, False, None, None, float(rng.exponential(5)), None))
            continue
        label = str(rng.choice(LABELS))
        truth = label if rng.random() < accuracy else str(rng.choice([x for x in LABELS if x != label]))
        observations.append(Observation(endpoint, f"{endpoint}-model", True, label, float(rng.uniform(0.5, 1.0)),
                                        float(latency_ms + rng.exponential(5)),
                                        truth if rng.random() < feedback_share else None))
    return observations


def renamed(observations: list[Observation], endpoint: str) -> list[Observation]:
    return [Observation(endpoint, o.model_version, o.ok, o.label, o.top_score, o.latency_ms, o.feedback_label)
            for o in observations]


def report_for(observations: list[Observation], **kwargs: object):
    return build_report(observations, "test", NOW - dt.timedelta(hours=24), NOW, AbThresholds(), **kwargs)


def test_a_clearly_better_variant_is_called_better() -> None:
    report = report_for(traffic("news-v3", 600, 0.70, seed=1) + traffic("news-v4", 400, 0.90, seed=2))
    (comparison,) = report.comparisons
    assert (report.control, comparison.treatment) == ("news-v3", "news-v4")  # the control has the most requests
    assert comparison.accuracy.significant and comparison.accuracy.p_value < 1e-6
    assert comparison.verdict.startswith("news-v4 is better than news-v3 on accuracy")
    assert "n=400/600" in comparison.verdict


def test_a_clearly_worse_variant_is_called_worse_and_so_is_its_latency() -> None:
    report = report_for(traffic("news-v3", 500, 0.90, seed=3) + traffic("news-v4", 300, 0.70, seed=4,
                                                                         latency_ms=60.0))
    (comparison,) = report.comparisons
    assert comparison.verdict.startswith("news-v4 is worse than news-v3 on accuracy")
    assert comparison.latency.significant
    assert report.variants["news-v4"].latency_p50_ms > report.variants["news-v3"].latency_p50_ms


def test_identical_variants_show_no_significant_difference() -> None:
    control = traffic("news-v3", 300, 0.8, seed=5, error_rate=0.05)
    report = report_for(control + renamed(control, "news-v4"), control="news-v3")
    (comparison,) = report.comparisons
    assert comparison.verdict.startswith("news-v4 vs news-v3: no significant difference in accuracy")
    for result in (comparison.accuracy, comparison.error_rate, comparison.latency, comparison.labels):
        assert result.p_value is not None and result.p_value > 0.9 and not result.significant


def test_too_little_feedback_gives_no_accuracy_verdict() -> None:
    report = report_for(traffic("news-v3", 300, 0.6, seed=6, feedback_share=0.05)
                        + traffic("news-v4", 300, 0.95, seed=7, feedback_share=0.05))
    (comparison,) = report.comparisons
    assert comparison.accuracy.p_value is None
    assert "not enough feedback" in comparison.verdict and "30 per variant needed" in comparison.verdict


def test_error_rates_and_label_shifts_are_tested() -> None:
    shifted = [Observation(o.endpoint, o.model_version, o.ok, "Health" if o.ok else None, o.top_score, o.latency_ms,
                           o.feedback_label) for o in traffic("news-v4", 300, 0.8, seed=9, error_rate=0.3)]
    report = report_for(traffic("news-v3", 300, 0.8, seed=8, error_rate=0.01) + shifted)
    (comparison,) = report.comparisons
    assert comparison.error_rate.significant and comparison.labels.significant


def test_several_treatments_share_alpha() -> None:
    report = report_for(traffic("news-v3", 300, 0.8, seed=10) + traffic("news-v4", 100, 0.8, seed=11)
                        + traffic("news-v5", 100, 0.8, seed=12))
    assert [c.treatment for c in report.comparisons] == ["news-v4", "news-v5"]
    assert {c.alpha for c in report.comparisons} == {0.025}


def test_an_unknown_control_is_refused() -> None:
    with pytest.raises(ReportError, match="control 'news-v9' has no transactions"):
        report_for(traffic("news-v3", 10, 0.8, seed=13), control="news-v9")


def _store(endpoint: str, created_at: dt.datetime, label: str, feedback: str | None, ok: bool = True,
           headline: str = "A headline", source: str = transactions.API_FEEDBACK) -> None:
    outcome = transactions.Outcome(transactions.new_request_id(), headline, 12.5,
                                   label=label if ok else None, scores={label: 0.7, "Other": 0.3} if ok else None,
                                   model_version=f"{endpoint}-model" if ok else None,
                                   error_code=None if ok else "model_error")
    record = transactions.build_record(outcome, created_at, endpoint, None)
    record.feedback_label = feedback
    record.feedback_source = source if feedback else None
    assert transactions.save([record])


@pytest.fixture
def local_table(moto_url: str, aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in stage_environment("local").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    transactions.create_table()
    return moto_url


def test_the_command_reports_the_window_of_the_real_table(local_table: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    now = dt.datetime.now(dt.UTC)
    for i in range(12):  # within the window, across today's and (20 h ago) usually yesterday's day partition
        created = now - dt.timedelta(hours=20 if i % 2 else 1)
        _store("news-v3", created, "Science", "Science" if i < 6 else "Health")
        _store("news-v4", created, "Science", "Science")
    _store("news-v4", now - dt.timedelta(minutes=5), "Science", None, ok=False)
    _store("news-v3", now - dt.timedelta(hours=30), "Health", "Health")  # outside the window
    assert main(["--stage", "local", "--hours", "24", "--output", str(tmp_path), "--min-feedback", "10",
                 "--min-requests", "10", "--replay", "0"]) == 0

    report = json.loads((tmp_path / "ab-report.json").read_text())
    v3, v4 = report["variants"]["news-v3"], report["variants"]["news-v4"]
    assert (v3["requests"], v3["feedback"], v3["correct"], v3["label_counts"]) == (12, 12, 6, {"Science": 12})
    assert (v4["requests"], v4["errors"], v4["feedback"], v4["correct"]) == (13, 1, 12, 12)
    assert v4["model_versions"] == ["news-v4-model"]
    assert report["control"] == "news-v4"
    assert report["verdict"].startswith("news-v3 is worse than news-v4 on accuracy (accuracy 0.500 vs 1.000")
    assert (tmp_path / "ab-report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    output = capsys.readouterr().out
    assert "news-v3 is worse than news-v4" in output and "replay: off (--replay 0)" in output
    assert report["replay"] is None


def test_the_command_replays_the_window_to_every_variant(local_table: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The replay goes through the API's model client (a fake here) to each variant, with the window's headlines."""
    now = dt.datetime.now(dt.UTC)
    for i in range(6):
        _store("news-v3" if i % 2 else "news-v4", now - dt.timedelta(hours=1), "Science", None, headline=f"Story {i}")
    _store("news-v3", now, "Science", "Health", headline="Clinic trial pauses", source=transactions.REVIEW_FEEDBACK)
    _store("news-v4", now, "Science", "Science", headline="Phone maker sues", source=transactions.API_FEEDBACK)
    sent: list[tuple[str, list[str]]] = []

    def classify(headlines: list[str], endpoint: str) -> model_client.ModelAnswer:
        sent.append((endpoint, headlines))
        labels = ["Health" if endpoint == "news-v4" and "Clinic" in h else "Science" for h in headlines]
        return model_client.ModelAnswer([model_client.Prediction(label, {label: 0.9, "Other": 0.1})
                                         for label in labels], f"{endpoint}-model", None, 2.0)

    monkeypatch.setattr(model_client, "classify", classify)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:9")
    assert main(["--stage", "local", "--output", str(tmp_path), "--replay", "5", "--control", "news-v3"]) == 0

    replay = json.loads((tmp_path / "ab-report.json").read_text())["replay"]
    assert len(replay["traffic"]) == 5 and replay["reviewed"] == {"Clinic trial pauses": "Health"}
    assert sorted(endpoint for endpoint, _ in sent) == ["news-v3", "news-v4"]
    assert sent[0][1] == sent[1][1] and "Clinic trial pauses" in sent[0][1]
    (comparison,) = replay["comparisons"]
    assert comparison["traffic"]["agree"] == 5 - ("Clinic trial pauses" in replay["traffic"])
    accuracy = comparison["reviewed_accuracy"]
    assert (accuracy["control_correct"], accuracy["treatment_correct"], accuracy["treatment_only"]) == (0, 1, 1)
    assert "Replay" in capsys.readouterr().out


def test_without_a_local_endpoint_the_report_still_writes_and_says_why(local_table: str, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    now = dt.datetime.now(dt.UTC)
    for endpoint in ("news-v3", "news-v4"):
        _store(endpoint, now, "Science", None)
    assert main(["--stage", "local", "--output", str(tmp_path), "--local-state-dir", str(tmp_path)]) == 0
    replay = json.loads((tmp_path / "ab-report.json").read_text())["replay"]
    assert {name: "is `make local` running" in v["error"] for name, v in replay["variants"].items()} == \
        {"news-v3": True, "news-v4": True}
    assert "news-v4: no answers" in capsys.readouterr().out
    assert (tmp_path / "ab-report.png").is_file()


def test_the_local_stage_needs_a_running_stack_or_a_url(tmp_path: Path, aws_credentials: None,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "unset below")
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    assert main(["--stage", "local", "--local-state-dir", str(tmp_path), "--output", str(tmp_path)]) == 1
    assert "is `make local` running" in capsys.readouterr().err
