"""The replay of `make ab-report`: the same headlines sent to every variant's endpoint, and how the answers compare.

Each request of the window went to one variant, so the window alone cannot say how two versions differ on the same
headline; the replay asks each of them now. It sends two sets of headlines, each variant the same ones, through the
API's own model client (`model_client.classify`, at most BATCH headlines per InvokeEndpoint call):

- the window's reviewed headlines: transactions labelled through the review queue (feedback source `review`), one
  per headline as the queue collapses them (`review.normalised`), each with the operator's label;
- a seeded sample of the window's traffic: up to N distinct headlines that were answered.

Per treatment against the control: on the traffic sample, agreement (95% Wilson interval), Cohen's kappa and the
cross table control label x treatment label; on the reviewed headlines, agreement, each variant's accuracy against
the operator's label and McNemar's exact test of the pairs only one of them answers right. The statistics take plain
labels and do no I/O; `replay` takes the classify function, so tests give it a fake.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from botocore.exceptions import BotoCoreError
from scipy import stats

from chalice_app.chalicelib import model_client, review, transactions
from chalice_app.chalicelib.model_client import ModelAnswer, ModelCallError
from chalice_app.chalicelib.transactions import TransactionRecord

BATCH = 32  # headlines per InvokeEndpoint call: small bodies, well inside a serverless endpoint's payload limit
DEFAULT_SIZE = 500
SEED = 0
FIT_NOTE = ("If the treatment was trained on these reviewed labels (review -> export -> retrain), its accuracy on them "
            "is fit, not evidence of a better model; the agreement says how many of the answers the model was unsure "
            "of it changed.")

Classify = Callable[[list[str], str], ModelAnswer]


@dataclass(frozen=True)
class Logged:
    """What the replay needs of one transaction of the window."""

    headline: str
    answered: bool
    review_label: str | None  # the operator's label, when the feedback came from the review queue

    @classmethod
    def from_record(cls, record: TransactionRecord) -> Logged:
        reviewed = record.feedback_source == transactions.REVIEW_FEEDBACK
        return cls(record.headline, record.status == transactions.OK, record.feedback_label if reviewed else None)


def reviewed_headlines(logged: Iterable[Logged]) -> dict[str, str]:
    """Headline -> the operator's label, one per normalised headline (the first text seen stands for it); where its
    records got different labels, the one most of them got (the first given on a tie)."""
    texts: dict[str, str] = {}
    votes: dict[str, Counter[str]] = {}
    for item in logged:
        if item.review_label is not None:
            key = review.normalised(item.headline)
            texts.setdefault(key, item.headline)
            votes.setdefault(key, Counter())[item.review_label] += 1
    return {texts[key]: counter.most_common(1)[0][0] for key, counter in votes.items()}


def traffic_sample(logged: Iterable[Logged], size: int, seed: int = SEED) -> list[str]:
    """Up to `size` distinct answered headlines (one per normalised headline), drawn with `seed`: the same window
    gives the same sample."""
    distinct: dict[str, str] = {}
    for item in logged:
        if item.answered:
            distinct.setdefault(review.normalised(item.headline), item.headline)
    keys = sorted(distinct)
    return [distinct[key] for key in random.Random(seed).sample(keys, min(size, len(keys)))]


@dataclass(frozen=True)
class Answers:
    """One endpoint's labels for the replayed headlines, or why it gave none."""

    endpoint: str
    labels: dict[str, str]  # headline -> label
    model_versions: list[str]
    error: str | None = None


def ask(endpoint: str, headlines: Sequence[str], classify: Classify) -> Answers:
    """Every headline to `endpoint`, BATCH at a time; the first failure ends it (a part of the answers would compare
    the variants on different headlines) and says why."""
    labels: dict[str, str] = {}
    versions: set[str] = set()
    for start in range(0, len(headlines), BATCH):
        batch = list(headlines[start:start + BATCH])
        try:
            answer = classify(batch, endpoint)
        except (ModelCallError, BotoCoreError) as exc:
            return Answers(endpoint, {}, sorted(versions), f"{_reason(exc)} (after {len(labels)} of {len(headlines)} "
                                                           "headlines)")
        labels.update(zip(batch, (p.label for p in answer.predictions), strict=True))
        versions.add(answer.model_version)
    return Answers(endpoint, labels, sorted(versions))


def _reason(exc: Exception) -> str:
    """The client's message and, for the operator who runs the report, the AWS error under it."""
    message = exc.message if isinstance(exc, ModelCallError) else str(exc)
    return f"{message}: {exc.__cause__}" if exc.__cause__ is not None else message


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """The 95% Wilson interval of a proportion (trials > 0)."""
    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


@dataclass(frozen=True)
class Agreement:
    """How often two variants gave the same label to the same headlines."""

    headlines: int
    agree: int
    rate: float | None
    rate_ci95: tuple[float, float] | None  # Wilson
    kappa: float | None  # Cohen's; None when chance alone explains it (both gave one and the same label throughout)
    labels: list[str]
    cross_table: list[list[int]]  # rows: the control's label, columns: the treatment's, in `labels` order


def agreement(control: Sequence[str], treatment: Sequence[str]) -> Agreement:
    """Agreement, Cohen's kappa and the cross table of two variants' labels for the same headlines, in order."""
    if len(control) != len(treatment):
        raise ValueError(f"{len(control)} control and {len(treatment)} treatment labels: not the same headlines")
    labels = sorted({*control, *treatment})
    index = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)), dtype=int)
    for ours, theirs in zip(control, treatment, strict=True):
        table[index[ours], index[theirs]] += 1
    n, agree = len(control), int(np.trace(table))
    if not n:
        return Agreement(0, 0, None, None, None, labels, table.tolist())
    expected = float(table.sum(axis=1) @ table.sum(axis=0)) / n ** 2
    kappa = None if np.isclose(expected, 1.0) else (agree / n - expected) / (1 - expected)
    return Agreement(n, agree, agree / n, wilson(agree, n), kappa, labels, table.tolist())


@dataclass(frozen=True)
class PairedAccuracy:
    """Both variants against the operator's labels on the same headlines."""

    headlines: int
    control_correct: int
    treatment_correct: int
    control_accuracy: float | None
    treatment_accuracy: float | None
    treatment_only: int  # headlines only the treatment answers right
    control_only: int  # and only the control
    mcnemar_p: float | None  # exact: the discordant pairs against a fair coin; None without headlines


def mcnemar_exact(treatment_only: int, control_only: int) -> float:
    """McNemar's exact two-sided p-value: the discordant pairs split as a fair coin would (1.0 without any)."""
    discordant = treatment_only + control_only
    return float(stats.binomtest(treatment_only, discordant).pvalue) if discordant else 1.0


def paired_accuracy(truth: Sequence[str], control: Sequence[str], treatment: Sequence[str]) -> PairedAccuracy:
    if not len(truth) == len(control) == len(treatment):
        raise ValueError(f"{len(truth)} labels, {len(control)} control and {len(treatment)} treatment answers")
    right = [(c == t, a == t) for t, c, a in zip(truth, control, treatment, strict=True)]
    control_correct, treatment_correct = sum(c for c, _ in right), sum(a for _, a in right)
    treatment_only = sum(a and not c for c, a in right)
    control_only = sum(c and not a for c, a in right)
    n = len(truth)
    return PairedAccuracy(n, control_correct, treatment_correct, control_correct / n if n else None,
                          treatment_correct / n if n else None, treatment_only, control_only,
                          mcnemar_exact(treatment_only, control_only) if n else None)


@dataclass(frozen=True)
class ReplayComparison:
    control: str
    treatment: str
    traffic: Agreement
    reviewed: Agreement
    reviewed_accuracy: PairedAccuracy


def compare(control: Answers, treatment: Answers, traffic: Sequence[str],
            reviewed: Mapping[str, str]) -> ReplayComparison:
    def labels(answers: Answers, headlines: Iterable[str]) -> list[str]:
        return [answers.labels[h] for h in headlines]

    return ReplayComparison(control.endpoint, treatment.endpoint,
                            agreement(labels(control, traffic), labels(treatment, traffic)),
                            agreement(labels(control, reviewed), labels(treatment, reviewed)),
                            paired_accuracy(list(reviewed.values()), labels(control, reviewed),
                                            labels(treatment, reviewed)))


@dataclass(frozen=True)
class Replay:
    """The replay's part of the A/B report: what was sent, each variant's answers, the comparisons."""

    control: str
    requested: int  # --replay N: the largest traffic sample
    seed: int
    traffic: list[str]  # the sampled headlines
    reviewed: dict[str, str]  # reviewed headline -> the operator's label
    variants: dict[str, Answers]
    comparisons: list[ReplayComparison]
    note: str = FIT_NOTE

    @property
    def failed(self) -> dict[str, str]:
        """Endpoint -> why it gave no answers."""
        return {name: answers.error for name, answers in self.variants.items() if answers.error is not None}


def replay(logged: Sequence[Logged], control: str, endpoints: Sequence[str], size: int,
           classify: Classify | None = None, seed: int = SEED) -> Replay:
    """Send the window's reviewed headlines and its traffic sample to every endpoint (through the API's model client
    unless `classify` is given) and compare each treatment with the control; a variant whose endpoint failed is
    reported as failed and left out of the comparisons."""
    traffic, reviewed = traffic_sample(logged, size, seed), reviewed_headlines(logged)
    headlines = list(dict.fromkeys([*traffic, *reviewed]))
    variants = {endpoint: ask(endpoint, headlines, classify or model_client.classify) for endpoint in endpoints}
    comparisons = [] if variants[control].error else [
        compare(variants[control], answers, traffic, reviewed)
        for name, answers in variants.items() if name != control and answers.error is None]
    return Replay(control, size, seed, traffic, reviewed, variants, comparisons)


def not_sent(control: str, endpoints: Sequence[str], size: int, reason: str) -> Replay:
    """A replay that could not start (no endpoint to send to): every variant failed for `reason`."""
    return Replay(control, size, SEED, [], {}, {name: Answers(name, {}, [], reason) for name in endpoints}, [])
