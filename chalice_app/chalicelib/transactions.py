"""The transaction log: one DynamoDB item per classified headline (and one per request refused before any was).

Writes are conditional and retried; when the table stays down each record is logged as `transaction_unsaved`
for replay, so none is lost silently. Indexes serve time windows and a client's own list (docs/local-stack.md).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.constants import NONE, PAY_PER_REQUEST_BILLING_MODE
from pynamodb.exceptions import PutError, PynamoDBException, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib import telemetry
from chalicelib.callers import Caller
from chalicelib.config import TableSettings, table_settings
from chalicelib.errors import RETRY_AFTER_UNAVAILABLE, ApiError, bad_request, not_found

OK, ERROR, REJECTED = "ok", "error", "rejected"
UNSAVED_EVENT = "transaction_unsaved"
DAY_INDEX = "day-created_at-index"
CLIENT_INDEX = "client-created_at-index"
REVIEW_INDEX = "review_day-review_margin-index"
# All the API ever updates on a record: the feedback, and the review keys it removes (a labelled record leaves the
# review index).
FEEDBACK_ATTRIBUTES = ("feedback_label", "feedback_at", "feedback_by", "feedback_source", "review_day",
                       "review_margin")
API_FEEDBACK, REVIEW_FEEDBACK = "api", "review"  # feedback_source: POST /transactions/{id}/feedback, the review


class DayIndex(GlobalSecondaryIndex["TransactionRecord"]):
    """Transactions of one UTC day in time order: a monitoring window is a Query, never a Scan."""

    class Meta:
        index_name = DAY_INDEX
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ClientIndex(GlobalSecondaryIndex["TransactionRecord"]):
    """One caller's transactions in time order (sparse: records without a key id are not in it)."""

    class Meta:
        index_name = CLIENT_INDEX
        projection = AllProjection()

    client_key_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ReviewIndex(GlobalSecondaryIndex["TransactionRecord"]):
    """The review queue: uncertain records not yet labelled, per UTC day, smallest margin first (sparse: only
    records flagged uncertain carry its keys, and feedback removes them)."""

    class Meta:
        index_name = REVIEW_INDEX
        projection = AllProjection()

    review_day = UnicodeAttribute(hash_key=True)
    review_margin = NumberAttribute(range_key=True)


class TransactionRecord(Model):
    """One classified headline: what was asked, what the model answered, and later the true label."""

    class Meta:
        table_name = "unbound"  # set from TABLE_NAME by `transaction_model()` before any call
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    request_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute()
    day = UnicodeAttribute()
    headline = UnicodeAttribute()
    status = UnicodeAttribute()  # ok | error | rejected (refused before the model was asked)
    error_code = UnicodeAttribute(null=True)
    label = UnicodeAttribute(null=True)
    scores = MapAttribute[str, float](null=True)  # label name -> probability, as the model answered
    uncertain = BooleanAttribute(null=True)  # the top score was below the stage's UNCERTAIN_BELOW
    model_version = UnicodeAttribute(null=True)
    endpoint_name = UnicodeAttribute(null=True)
    variant = UnicodeAttribute(null=True)
    latency_ms = NumberAttribute()
    model_latency_ms = NumberAttribute(null=True)
    run_id = UnicodeAttribute(null=True)
    client_key_id = UnicodeAttribute(null=True)  # the API key id that sent it (X-Client-Id on a keyless stage)
    feedback_label = UnicodeAttribute(null=True)
    feedback_at = UTCDateTimeAttribute(null=True)
    feedback_by = UnicodeAttribute(null=True)  # the key id that gave the feedback: a retraining can exclude it
    feedback_source = UnicodeAttribute(null=True)  # API_FEEDBACK or REVIEW_FEEDBACK
    review_day = UnicodeAttribute(null=True)  # `day`, while the record waits for a label in the review queue
    review_margin = NumberAttribute(null=True)  # top score minus the second: the smaller, the more worth a label
    expires_at = TTLAttribute()

    day_index = DayIndex()
    client_index = ClientIndex()
    review_index = ReviewIndex()


class TableUnavailable(ApiError):
    """The table cannot be read or written (missing, unreachable, not configured): a 503 to retry later."""

    def __init__(self, reason: str) -> None:
        super().__init__(503, "table_unavailable", "the transaction table is not available; retry later",
                         RETRY_AFTER_UNAVAILABLE)
        self.reason = reason  # for the log only: AWS error codes and setting names stay out of client answers
        telemetry.logger.warning("table_unavailable", extra={"reason": reason})


@dataclass(frozen=True)
class _Binding:
    settings: TableSettings
    connection: Connection  # for TransactWriteItems, which PynamoDB runs on a plain connection


_binding: _Binding | None = None
_binding_lock = threading.Lock()


def _bind() -> _Binding:
    """Point the model at the configured table; a change of settings gets fresh connections."""
    global _binding
    settings = table_settings()
    if settings.table_name is None:
        raise TableUnavailable("TABLE_NAME is not configured")
    with _binding_lock:
        binding = _binding
        if binding is None or binding.settings != settings:
            binding = _binding = _Binding(settings, _rebind_model(settings))
    return binding


def _rebind_model(settings: TableSettings) -> Connection:
    """Set the model's Meta from the settings; returns a plain connection with the same settings."""
    meta = TransactionRecord.Meta
    meta.table_name = settings.table_name
    meta.region = settings.region
    meta.host = settings.endpoint_url
    meta.connect_timeout_seconds = settings.connect_timeout
    meta.read_timeout_seconds = settings.read_timeout
    meta.max_retry_attempts = settings.max_retries
    TransactionRecord._connection = None  # PynamoDB caches one connection per model class: rebuild it from Meta
    return Connection(region=settings.region, host=settings.endpoint_url,
                      connect_timeout_seconds=settings.connect_timeout, read_timeout_seconds=settings.read_timeout,
                      max_retry_attempts=settings.max_retries)


def transaction_model() -> type[TransactionRecord]:
    """The PynamoDB model, bound to the table the current settings name."""
    _bind()
    return TransactionRecord


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Outcome:
    """What the API learned about one headline, ready to be stored."""

    request_id: str
    headline: str
    latency_ms: float
    label: str | None = None
    scores: dict[str, float] | None = None
    model_version: str | None = None
    variant: str | None = None
    model_latency_ms: float | None = None
    error_code: str | None = None
    rejected: bool = False
    uncertain: bool | None = None  # None: no prediction


def status_of(outcome: Outcome) -> str:
    if outcome.rejected:
        return REJECTED
    return ERROR if outcome.error_code else OK


def build_record(outcome: Outcome, created_at: dt.datetime, endpoint_name: str | None,
                 run_id: str | None, client_key_id: str | None = None) -> TransactionRecord:
    """An unsaved item; building needs no table, so it works even when the table is down."""
    ttl_days = table_settings().ttl_days
    day = utc_day(created_at).isoformat()
    queued = margin(outcome.scores) if outcome.uncertain and outcome.scores else None  # the review queue's sort key
    return TransactionRecord(
        request_id=outcome.request_id, created_at=created_at, day=day,
        headline=storable_text(outcome.headline), status=status_of(outcome), error_code=outcome.error_code,
        label=outcome.label, scores=outcome.scores, uncertain=outcome.uncertain, model_version=outcome.model_version,
        endpoint_name=endpoint_name, variant=outcome.variant, latency_ms=round(outcome.latency_ms, 3),
        model_latency_ms=None if outcome.model_latency_ms is None else round(outcome.model_latency_ms, 3),
        run_id=run_id, client_key_id=client_key_id, expires_at=created_at + dt.timedelta(days=ttl_days),
        review_day=None if queued is None else day, review_margin=queued,
    )


def margin(scores: dict[str, float]) -> float:
    """The top score minus the second (the top score alone when there is one): how close the model came to
    answering otherwise."""
    top = sorted(scores.values(), reverse=True)[:2]
    return round(top[0] - (top[1] if len(top) > 1 else 0.0), 6)


def storable_text(text: str) -> str:
    """The text as DynamoDB can store it (UTF-8 only): a code point UTF-8 cannot encode, a lone surrogate, is kept
    as its escape (`\\ud800`), so a record is never lost to the text it records."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def save(records: Sequence[TransactionRecord]) -> bool:
    """Write the records (all or none); on failure log each as `transaction_unsaved` and return False."""
    try:
        binding = _bind()
        if len(records) == 1:
            records[0].save(condition=TransactionRecord.request_id.does_not_exist())
        else:  # a batch (at most 64 headlines) is one TransactWriteItems call: one round trip, all or none
            with TransactWrite(connection=binding.connection) as transaction:
                for record in records:
                    transaction.save(record, condition=TransactionRecord.request_id.does_not_exist())
    except (PynamoDBException, TableUnavailable) as exc:
        for record in records:
            telemetry.logger.error(UNSAVED_EVENT, extra={"record": record.to_simple_dict(), "reason": _reason(exc)})
        telemetry.record_unsaved(len(records))
        return False
    return True


def _reason(exc: Exception) -> str:
    cause = getattr(exc, "cause_response_code", None)
    return f"{type(exc).__name__}: {cause}" if cause else f"{type(exc).__name__}: {exc}"


def find(request_id: str) -> TransactionRecord:
    telemetry.bind_request_ids([request_id])
    model = transaction_model()
    try:
        return model.get(request_id, consistent_read=True)
    except model.DoesNotExist as exc:
        raise not_found(f"no transaction {request_id!r}") from exc
    except PynamoDBException as exc:
        raise TableUnavailable(_reason(exc)) from exc


def find_for(caller: Caller, request_id: str) -> TransactionRecord:
    """The record if this caller may read it; another client's record is as absent as a missing one (404)."""
    record = find(request_id)
    if not caller.may_read(record.client_key_id):
        raise not_found(f"no transaction {request_id!r}")
    return record


def latest_of(client_key_id: str, limit: int) -> list[TransactionRecord]:
    """Up to `limit` of one client's records, newest first: one Query of the client index."""
    model = transaction_model()
    try:
        return list(model.client_index.query(client_key_id, scan_index_forward=False, limit=limit))
    except PynamoDBException as exc:
        raise TableUnavailable(_reason(exc)) from exc


def latest(limit: int, now: dt.datetime) -> list[TransactionRecord]:
    """Up to `limit` records, newest first: the day index's partition of `now`, then the day before's.

    The index is partitioned by UTC day, so "the last N" is at most two Queries, each bounded by what is
    still wanted; never a Scan.
    """
    today = utc_day(now)
    return list(query_days([today, today - dt.timedelta(days=1)], newest_first=True, limit=limit))


def between(since: dt.datetime, until: dt.datetime, newest_first: bool = False) -> Iterator[TransactionRecord]:
    """Records created from `since` to `until` (inclusive, UTC), oldest first: one day-index Query per UTC day.

    `newest_first` reverses the order, for readers that stop after the most recent N.
    """
    days = days_between(since, until)
    return query_days(reversed(days) if newest_first else days, DayIndex.created_at.between(since, until),
                      newest_first)


def utc_day(moment: dt.datetime) -> dt.date:
    """The UTC day of a moment (naive means UTC, as PynamoDB stores `created_at`): its ISO date is the record's
    `day`, the day index's partition key."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).date()


def days_between(since: dt.datetime, until: dt.datetime) -> list[dt.date]:
    """The UTC days from `since` to `until`, both included: the partitions a time window spans."""
    first, last = utc_day(since), utc_day(until)
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def query_days(days: Iterable[dt.date], created: Condition | None = None, newest_first: bool = False,
               limit: int | None = None) -> Iterator[TransactionRecord]:
    """The one reader of the day index: one Query per day in the order given (never a Scan), each in time order
    (newest first when asked) and bounded by `created` on `created_at`, stopping after `limit` records.

    training_jobs/feedback.py and loadtest/reconcile.py may not import this code (box borders) and query the
    index with boto3; tests/unit/chalice_app/chalicelib/test_transactions_day_index.py pins them to this reader.
    """
    model = transaction_model()
    wanted = limit
    try:
        for day in days:
            if wanted is not None and wanted <= 0:
                return
            for record in model.day_index.query(day.isoformat(), created, scan_index_forward=not newest_first,
                                                limit=wanted):
                wanted = None if wanted is None else wanted - 1
                yield record
    except PynamoDBException as exc:
        raise TableUnavailable(_reason(exc)) from exc


ReviewKey = dict[str, dict[str, Any]]  # where a Query of the review index resumes (DynamoDB's ExclusiveStartKey)


def review_page(day: dt.date, limit: int, after: ReviewKey | None) -> tuple[list[TransactionRecord], ReviewKey | None]:
    """Up to `limit` records of one UTC day's review queue, smallest margin first, after `after`: one Query of the
    review index reading exactly what it returns (never a Scan). The key is None once the day has no more."""
    model = transaction_model()
    try:
        page = model.review_index.query(day.isoformat(), limit=limit, last_evaluated_key=after)
        return list(page), page.last_evaluated_key
    except PynamoDBException as exc:
        raise TableUnavailable(_reason(exc)) from exc


def record_feedback(caller: Caller, request_id: str, label: str, source: str = API_FEEDBACK) -> TransactionRecord:
    """Store the true label, once: it must be one of the labels the model scored on that very transaction, and
    the first feedback wins (a different one later is a 409 naming it), so no key can rewrite what another said.
    The same label from the same key again is a retry, answered with the record as it stands. `source` says
    which door the label came through; the same write takes the record out of the review queue."""
    record = find_for(caller, request_id)
    known = sorted(record.scores.as_dict() if record.scores is not None else {})
    if not known:
        raise ApiError(409, "no_prediction", f"transaction {request_id!r} has status {record.status} "
                                             f"({record.error_code}); there is no prediction to give feedback on")
    if label not in known:
        raise bad_request(f"unknown label {label!r}; this transaction's labels are {', '.join(known)}",
                          code="unknown_label")
    if record.feedback_label is not None:
        return _same_feedback_or_conflict(record, caller, label)
    model = type(record)
    feedback_at = dt.datetime.now(dt.UTC)
    sender = [model.feedback_by.set(caller.key_id)] if caller.key_id is not None else []
    try:
        # Not record.update(): PynamoDB's asks for the whole item back (ReturnValues ALL_NEW), which the API's IAM
        # role may not (it may touch the feedback attributes only, ops/policies.py); this asks for nothing.
        model._get_connection().update_item(
            record.request_id, actions=[model.feedback_label.set(label), model.feedback_at.set(feedback_at),
                                        model.feedback_source.set(source), *sender, model.review_day.remove(),
                                        model.review_margin.remove()],
            condition=model.request_id.exists() & model.feedback_label.does_not_exist(), return_values=NONE)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return _same_feedback_or_conflict(find(request_id), caller, label)
        raise TableUnavailable(_reason(exc)) from exc
    record.feedback_label, record.feedback_at, record.feedback_by = label, feedback_at, caller.key_id
    record.feedback_source, record.review_day, record.review_margin = source, None, None
    return record


def _same_feedback_or_conflict(record: TransactionRecord, caller: Caller, label: str) -> TransactionRecord:
    if (record.feedback_label, record.feedback_by) == (label, caller.key_id):
        return record
    raise _feedback_exists(record)


def _feedback_exists(record: TransactionRecord) -> ApiError:
    given = f"{record.feedback_label} at {record.feedback_at:%Y-%m-%dT%H:%M:%SZ}" if record.feedback_at else "already"
    return ApiError(409, "feedback_exists", f"transaction {record.request_id!r} already has feedback ({given}); "
                                            "the first feedback stands")


def create_table() -> bool:
    """Create the table (on-demand billing, TTL on `expires_at`, its indexes) unless it exists; one that exists gets
    the indexes it lacks (a table kept from before an index was added, as the local stack keeps its table)."""
    model = transaction_model()
    if model.exists():
        add_missing_indexes()
        return False
    model.create_table(wait=True)
    return True


def add_missing_indexes() -> list[str]:
    """Add each index of the model that the table lacks, one UpdateTable each (DynamoDB builds one at a time, and
    fills it from the items already there); the names added. On AWS the infra stack adds them instead."""
    binding = _bind()
    table = binding.settings.table_name
    present = {index["IndexName"] for index in binding.connection.describe_table(table).get(
        "GlobalSecondaryIndexes", [])}
    added = []
    for index in TransactionRecord._get_schema()["global_secondary_indexes"]:
        if index["index_name"] in present:
            continue
        binding.connection.dispatch("UpdateTable", {
            "TableName": table, "AttributeDefinitions": index["attribute_definitions"],
            "GlobalSecondaryIndexUpdates": [{"Create": {
                "IndexName": index["index_name"], "Projection": index["projection"],
                "KeySchema": sorted(index["key_schema"], key=lambda key: key["KeyType"])}}]})  # HASH, then RANGE
        added.append(index["index_name"])
    return added


@dataclass(frozen=True)
class ReplayReport:
    written: int
    already_present: int


def replay(items: Iterable[dict[str, Any]]) -> ReplayReport:
    """Write records from `transaction_unsaved` events; ids already in the table are left untouched."""
    model = transaction_model()
    written = present = 0
    for item in items:
        record = model()
        record.from_simple_dict(item)
        try:
            record.save(condition=model.request_id.does_not_exist())
            written += 1
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            present += 1
    return ReplayReport(written, present)
