"""`make export-feedback`: transactions that received a feedback label -> a training TSV in the data format.

    python -m training_jobs.feedback_export --stage dev --days 7 --output artifacts/feedback/feedback.tsv

Day-index Queries, never a Scan. Labels are votes of API keys, so that no key can outvote others by repetition: only
the keys the stage trusts to train (its operators and reviewers, or TRAINING_KEY_IDS) vote, each key once per title
(its latest label), at most --max-labels-per-key titles each, and a title's label is the one the most distinct keys
gave (ties to the latest). Titles of the held-out splits are dropped so feedback never reaches the scores that
gate a model. The report counts the labels each rule dropped (docs/ab-and-retraining.md).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from devkit.day_index import query_days
from devkit.local_stack_state import NoLocalStackError, fake_client_arguments, local_dynamodb_url
from devkit.stages import KeyIds, stage_environment, training_keys
from model.labels import LabelMap
from training_jobs.config import REPO_ROOT, Hyperparameters, default_data_dir
from training_jobs.data import collapse_whitespace, load_splits, normalise_title

COLUMNS = ("category", "title", "votes", "feedback_at", "request_id", "feedback_by")
DEFAULT_OUTPUT = REPO_ROOT / "artifacts" / "feedback" / "feedback.tsv"
# The rules that drop labels, in the order they run; the report counts each rule's drops under these names.
DROP_RULES = ("excluded_key", "untrusted_key", "unknown_label", "held_out", "repeat_vote", "over_key_cap", "outvoted")
DEFAULT_MAX_LABELS_PER_KEY = 1000


class FeedbackError(RuntimeError):
    """The export cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class Feedback:
    """One transaction's headline and the label a person gave it."""

    request_id: str
    title: str
    label: str
    feedback_at: str  # ISO 8601 in UTC as PynamoDB stores it: sorts in time order
    feedback_by: str = ""  # the API key id that gave it ("" when none was recorded: all of those are one voter)


@dataclass(frozen=True)
class LabelledFeedback:
    feedback: Feedback
    category: str


@dataclass(frozen=True)
class ExportRow:
    """One title's resolved label, with how many keys gave it and the latest feedback that backs it."""

    category: str
    title: str
    votes: int  # distinct API keys that gave this label
    feedback_at: str
    request_id: str
    feedback_by: str  # the key ids whose votes back the label, comma-separated


@dataclass(frozen=True)
class VoteRules:
    """Whose labels count, and how much one key may weigh."""

    trusted: KeyIds  # the keys whose labels may train (stages.training_keys)
    excluded: frozenset[str] = frozenset()  # keys left out for this export (--exclude-client)
    max_labels_per_key: int = DEFAULT_MAX_LABELS_PER_KEY


@dataclass
class ExportReport:
    """Every label read is either dropped by one rule (`dropped`) or a vote behind an exported row."""

    table: str
    days: list[str]
    trusted: str = ""  # whose labels may train, as the stage names them
    read: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_RULES, 0))
    conflicts: int = 0  # exported titles whose voters disagreed
    exported: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    output: str = ""


def window_days(days: int, today: dt.date) -> list[str]:
    """The day-index partitions of the last `days` UTC days, today first."""
    if days < 1:
        raise FeedbackError(f"--days must be at least 1, got {days}")
    return [(today - dt.timedelta(days=offset)).isoformat() for offset in range(days)]


def query_feedback(client: Any, table: str, days: Iterable[str]) -> Iterator[Feedback]:
    """Items with a feedback label, one paginated Query of the day index per day."""
    deserialise = TypeDeserializer().deserialize
    for raw in query_days(client, table, days, "attribute_exists(feedback_label)"):
        item = {name: deserialise(value) for name, value in raw.items()}
        yield Feedback(request_id=item["request_id"], title=item["headline"], label=item["feedback_label"],
                       feedback_at=item.get("feedback_at", ""), feedback_by=item.get("feedback_by") or "")


def with_categories(feedback: Iterable[Feedback], labels: LabelMap) -> tuple[list[LabelledFeedback], int]:
    """Feedback whose label the label map knows, as category codes; and how many it did not know."""
    known, unknown = [], 0
    for item in feedback:
        try:
            known.append(LabelledFeedback(item, labels.category_of_name(item.label)))
        except KeyError:
            unknown += 1
    return known, unknown


def _time_order(vote: LabelledFeedback) -> tuple[str, str]:
    return vote.feedback.feedback_at, vote.feedback.request_id


def _title_key(vote: LabelledFeedback) -> str:
    return normalise_title(vote.feedback.title)


def latest_vote_per_key(votes: Iterable[LabelledFeedback]) -> list[LabelledFeedback]:
    """One vote per key and title, the key's latest: a key may correct itself, but repeating a headline and
    labelling every copy counts once."""
    latest = {(vote.feedback.feedback_by, _title_key(vote)): vote for vote in sorted(votes, key=_time_order)}
    return sorted(latest.values(), key=_time_order)


def capped_per_key(votes: Iterable[LabelledFeedback], cap: int) -> list[LabelledFeedback]:
    """Each key's first `cap` votes in time order: no key can fill the training set on its own."""
    given: Counter[str] = Counter()
    kept = []
    for vote in sorted(votes, key=_time_order):
        given[vote.feedback.feedback_by] += 1
        if given[vote.feedback.feedback_by] <= cap:
            kept.append(vote)
    return kept


def resolve_title(votes: Sequence[LabelledFeedback]) -> ExportRow:
    """The label the most distinct keys gave; on a tie the tied label given last. The row carries the latest
    feedback for that label and the keys behind it."""
    keys: dict[str, set[str]] = {}
    for vote in votes:
        keys.setdefault(vote.category, set()).add(vote.feedback.feedback_by)
    top = max(len(voters) for voters in keys.values())
    latest = max((v for v in votes if len(keys[v.category]) == top), key=_time_order)
    return ExportRow(category=latest.category, title=collapse_whitespace(latest.feedback.title), votes=top,
                     feedback_at=latest.feedback.feedback_at, request_id=latest.feedback.request_id,
                     feedback_by=",".join(sorted(keys[latest.category] - {""})))


def group_by_title(feedback: Iterable[LabelledFeedback]) -> dict[str, list[LabelledFeedback]]:
    groups: dict[str, list[LabelledFeedback]] = {}
    for item in feedback:
        groups.setdefault(_title_key(item), []).append(item)
    return groups


def held_out_titles(data: Path, seed: int) -> set[str]:
    """Normalised titles of the valid and test splits that `train.py --data` would hold out."""
    splits = load_splits(data, seed)
    return {normalise_title(ex.title) for ex in splits.valid + splits.test}


def build_export(feedback: Iterable[Feedback], labels: LabelMap, held_out: set[str], report: ExportReport,
                 rules: VoteRules) -> list[ExportRow]:
    """Rows of the labels that survive the rules (DROP_RULES, in order), one per normalised title, oldest feedback
    first; fills in the report's counts."""
    read = list(feedback)
    from_keys = [item for item in read if item.feedback_by not in rules.excluded]
    trusted = [item for item in from_keys if item.feedback_by in rules.trusted]
    labelled, unknown = with_categories(trusted, labels)
    fresh = [vote for vote in labelled if _title_key(vote) not in held_out]
    once = latest_vote_per_key(fresh)
    votes = capped_per_key(once, rules.max_labels_per_key)
    groups = group_by_title(votes)
    rows = sorted((resolve_title(title_votes) for title_votes in groups.values()),
                  key=lambda row: (row.feedback_at, row.request_id))
    report.read = len(read)
    report.dropped = {"excluded_key": len(read) - len(from_keys), "untrusted_key": len(from_keys) - len(trusted),
                      "unknown_label": unknown, "held_out": len(labelled) - len(fresh),
                      "repeat_vote": len(fresh) - len(once), "over_key_cap": len(once) - len(votes),
                      "outvoted": len(votes) - sum(row.votes for row in rows)}
    report.conflicts = sum(len({v.category for v in title_votes}) > 1 for title_votes in groups.values())
    report.exported = len(rows)
    report.categories = dict(sorted(Counter(row.category for row in rows).items()))
    return rows


def write_tsv(rows: Sequence[ExportRow], output: Path) -> None:
    """RFC 4180 tab-separated with a header row: the format `training_jobs.data.read_examples` reads."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with open(partial, "w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([getattr(row, column) for column in COLUMNS] for row in rows)
    partial.replace(output)  # a reader never sees half a file


def report_path(output: Path) -> Path:
    return output.with_name(output.name.split(".")[0] + ".report.json")


def dynamodb_client(local_state_dir: Path | None, region: str | None) -> Any:
    """The table's client: the running local stack's moto (with its fake credentials), else boto3's defaults."""
    if local_state_dir is not None and not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        return boto3.client("dynamodb", endpoint_url=local_dynamodb_url(local_state_dir),
                            **fake_client_arguments())
    return boto3.client("dynamodb", region_name=region)


def table_name(args: argparse.Namespace) -> str:
    name = args.table or os.environ.get("TABLE_NAME") or stage_environment(args.stage).get("TABLE_NAME")
    if not name:
        raise FeedbackError(f"stage {args.stage!r} names no TABLE_NAME; pass --table")
    return name


def describe(keys: KeyIds) -> str:
    return "every key" if keys.everyone else f"{len(keys.ids)} key(s): {', '.join(sorted(keys.ids)) or 'none'}"


def export(args: argparse.Namespace) -> ExportReport:
    table = table_name(args)
    if args.max_labels_per_key < 1:
        raise FeedbackError(f"--max-labels-per-key must be at least 1, got {args.max_labels_per_key}")
    rules = VoteRules(training_keys(args.stage), frozenset(args.exclude_client), args.max_labels_per_key)
    report = ExportReport(table=table, days=window_days(args.days, dt.datetime.now(dt.UTC).date()),
                          trusted=describe(rules.trusted), output=str(args.output))
    held_out = held_out_titles(args.data, args.seed)
    client = dynamodb_client(args.local_state_dir, args.region)
    rows = build_export(query_feedback(client, table, report.days), LabelMap.default(), held_out, report, rules)
    write_tsv(rows, args.output)
    report_path(args.output).write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local",
                        help="Chalice stage whose TABLE_NAME is read and whose keys may train (default: local)")
    parser.add_argument("--table", help="table name (default: $TABLE_NAME, else the stage's)")
    parser.add_argument("--days", type=int, default=7, help="window: the last N UTC days of the day index")
    parser.add_argument("--data", type=Path, default=default_data_dir(),
                        help="the training data whose valid/test titles must not leak (as train.py --data)")
    parser.add_argument("--seed", type=int, default=Hyperparameters.seed, help="split seed when --data is one file")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--exclude-client", action="append", default=[], metavar="KEY_ID",
                        help="leave out the feedback this API key id gave (repeatable)")
    parser.add_argument("--max-labels-per-key", type=int, default=DEFAULT_MAX_LABELS_PER_KEY, metavar="N",
                        help="count at most the first N titles each key labelled in the window "
                             f"(default: {DEFAULT_MAX_LABELS_PER_KEY})")
    parser.add_argument("--local-state-dir", type=Path,
                        help="state directory of a running `make local`: read its moto table")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = export(args)
    except (FeedbackError, NoLocalStackError, ValueError) as exc:  # DataError is a ValueError
        print(f"export-feedback: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"export-feedback: reading the transaction table failed: {exc}", file=sys.stderr)
        return 1
    dropped = ", ".join(f"{rule} {count}" for rule, count in report.dropped.items())
    print(f"table {report.table}, days {report.days[-1]}..{report.days[0]}: {report.read} label(s) read; labels of "
          f"{report.trusted} may train; dropped: {dropped}; {report.exported} title(s) exported "
          f"{report.categories} ({report.conflicts} with disagreeing keys) to {report.output} "
          f"(report {report_path(args.output)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
