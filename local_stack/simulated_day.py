"""A simulated day of traffic in the local table, written straight into its database: what a day of steady traffic
leaves in `make local`'s table, in seconds (sent through the API and moto one by one, 100,000 records take an hour).

    python -m local_stack.simulated_day [--records 100000] [--state-dir artifacts/local] [--seed 0]

Every record is built by the API's own code (`chalicelib.transactions.build_record`), spread over the 24 hours
before now: classifications (some uncertain), a few refused or failed requests, feedback on a few, from a handful
of clients. The table is created first, by the API's code too, if the database has none. It takes the stack's lock:
run it while no `make local` or `make stand-ins` uses the state directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import random
import sys
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from moto.dynamodb.models.dynamo_type import DynamoType
from moto.server import ThreadedMotoServer
from tqdm import tqdm

from chalice_app.chalicelib import transactions
from chalice_app.chalicelib.config import score_settings
from devkit.local_stack_state import DYNAMODB_DATABASE, FAKE_AWS
from devkit.stages import stage_environment
from local_stack.dynamodb import kept_tables
from local_stack.orchestrator import REPO_ROOT, STAGE, LocalStackError, create_table, single_instance
from local_stack.table_store import StoreError, TableKey, TableStore, key_text

DAY = dt.timedelta(days=1)
BATCH = 5_000  # records per SQLite transaction
REFUSED, FAILED, WITH_FEEDBACK = 0.02, 0.01, 0.03  # shares of the day's records
CLIENTS = ("newsroom", "tagger", "console", None)  # X-Client-Id on the keyless local stage; None: sent without one
MODEL_VERSION = "simulated-day"
SUBJECTS = {
    "Business": ("Fed", "Oil prices", "Retail sales", "The dollar", "Bank shares", "Factory orders"),
    "Entertainment": ("Box office", "The new album", "Festival line-up", "Streaming series", "Award show"),
    "Science": ("Smartphone maker", "Space probe", "Chip designer", "Climate study", "Software update"),
    "Health": ("Flu season", "New vaccine", "Hospital study", "Drug regulator", "Diet research"),
}
TURNS = ("rises after", "falls on", "surprises with", "slips ahead of", "holds steady despite", "draws record")
OCCASIONS = ("quarterly report", "weekend", "new data", "regulator's review", "strong demand", "early trials")


def headline(label: str, rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS[label])} {rng.choice(TURNS)} {rng.choice(OCCASIONS)}"


def scores(label: str, rng: random.Random) -> dict[str, float]:
    """A probability per label, `label` on top: mostly confident, sometimes not (its weight against three <= 1)."""
    weights = {name: rng.uniform(2, 30) if name == label else rng.uniform(0.1, 1) for name in SUBJECTS}
    total = sum(weights.values())
    return {name: round(weight / total, 4) for name, weight in weights.items()}


def simulated_records(count: int, end: dt.datetime, rng: random.Random,
                      endpoint_name: str | None) -> Iterator[transactions.TransactionRecord]:
    """`count` records created in the day before `end`, as the API would have stored them."""
    uncertain_below = score_settings().uncertain_below
    for _ in range(count):
        created_at = end - DAY * rng.random()
        label, client, roll = rng.choice(list(SUBJECTS)), rng.choice(CLIENTS), rng.random()
        request_id, latency_ms = transactions.new_request_id(), rng.uniform(8, 60)
        if roll < REFUSED:
            outcome = transactions.Outcome(request_id, '{"headline": ""}', latency_ms, error_code="invalid_request",
                                           rejected=True)
        elif roll < REFUSED + FAILED:
            outcome = transactions.Outcome(request_id, headline(label, rng), latency_ms,
                                           error_code="model_unavailable")
        else:
            answer = scores(label, rng)
            outcome = transactions.Outcome(request_id, headline(label, rng), latency_ms, label, answer, MODEL_VERSION,
                                           model_latency_ms=latency_ms * 0.6,
                                           uncertain=answer[label] < uncertain_below)
        record = transactions.build_record(outcome, created_at, None if outcome.rejected else endpoint_name, None,
                                           client)
        if outcome.scores and rng.random() < WITH_FEEDBACK:
            record.feedback_label = rng.choice(list(outcome.scores))
            record.feedback_at = created_at + dt.timedelta(minutes=rng.uniform(1, 30))
            record.feedback_by = client
        yield record


def ensure_table(database: Path, table_name: str) -> TableKey:
    """The stage's table in the database; created by the API's own code on a private moto when it is not there."""
    store = TableStore(database)
    try:
        found = [table for table in store.tables() if table.name == table_name]
    finally:
        store.close()
    if found:
        return found[0]
    with kept_tables(database):
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            create_table({**FAKE_AWS, "AWS_ENDPOINT_URL_DYNAMODB": f"http://{host}:{port}"})
        finally:
            server.stop()
    return ensure_table(database, table_name)


def write_day(state_dir: Path, count: int, seed: int, end: dt.datetime) -> Path:
    """Add `count` records of the day before `end` to the state directory's table; returns the database's path."""
    database = state_dir / DYNAMODB_DATABASE
    environment = stage_environment(STAGE)
    os.environ.update(environment)  # the stage's TTL and score settings, as `chalice local` sees them
    table = ensure_table(database, environment["TABLE_NAME"])
    records = simulated_records(count, end, random.Random(seed), environment.get("ENDPOINT_NAME"))
    store = TableStore(database)
    try:
        with tqdm(total=count, unit="record", desc="simulated day") as progress:
            while batch := list(islice(records, BATCH)):
                store.save_items(table, [(key_text(DynamoType({"S": record.request_id})), "",
                                          json.dumps(record.serialize())) for record in batch])
                progress.update(len(batch))
    finally:
        store.close()
    return database


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="how many (default: 100,000)")
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / "artifacts" / "local",
                        help="the stack's state directory (make local: LOCAL_STATE_DIR)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the private moto's start-up notes
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # its access log: werkzeug sets INFO on its own
    if args.records < 0:
        parser.error("--records must be 0 or more")
    started = time.monotonic()
    try:
        with single_instance(args.state_dir):
            database = write_day(args.state_dir, args.records, args.seed, dt.datetime.now(dt.UTC))
    except (LocalStackError, StoreError) as exc:
        sys.exit(f"simulated day: {exc}")
    print(f"{args.records:,} records of a simulated day added to {database} "
          f"({database.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.1f} s; start the stack with "
          f"`make local` (LOCAL_STATE_DIR={args.state_dir})")


if __name__ == "__main__":
    main()
