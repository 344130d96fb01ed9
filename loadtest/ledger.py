"""The client's account of a load run: every headline it sent for classification and what became of it.

Each headline falls in one of four groups (named, rejected, unnamed, unanswered) by what the API promises about
its record, which is what reconciliation may demand of the table (docs/load-testing.md).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass
class Ledger:
    """Counts and ids of one run (one X-Run-Id); written by the locustfile, read by `loadtest.reconcile`."""

    run_id: str
    started_at: str = field(default_factory=_now)  # ISO 8601, UTC
    finished_at: str | None = None
    sent: int = 0  # headlines sent in classification requests
    classified: int = 0  # headlines answered with a prediction (2xx)
    rejected: int = 0  # headlines of 4xx answers without an id of their own: no record of their own expected
    unnamed: int = 0  # headlines of other answers that did not name their ids: a record expected
    unanswered: int = 0  # headlines of requests without an HTTP answer: a record possible
    request_ids: list[str] = field(default_factory=list)  # every id an answer named, repeats kept

    def record(self, headlines: int, status: int, request_ids: list[str]) -> None:
        """One classification request of `headlines` headlines; `status` 0 when no HTTP answer came."""
        self.sent += headlines
        self.request_ids.extend(request_ids)
        if 200 <= status < 300:
            self.classified += len(request_ids)
        not_named = max(0, headlines - len(request_ids))
        if status == 0:
            self.unanswered += not_named
        elif 400 <= status < 500:
            self.rejected += not_named
        else:
            self.unnamed += not_named

    def finish(self) -> None:
        self.finished_at = _now()

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """When the run sent requests: the transactions of the run were created in this window."""
        end = self.finished_at or _now()
        return dt.datetime.fromisoformat(self.started_at), dt.datetime.fromisoformat(end)

    def duration_s(self) -> float:
        started, finished = self.window()
        return (finished - started).total_seconds()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Ledger:
        try:
            data: dict[str, Any] = json.loads(Path(path).read_text())
            return cls(**data)
        except FileNotFoundError as exc:
            raise ValueError(f"{path}: no ledger; the load run did not write one") from exc
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not a ledger written by loadtest ({exc})") from exc


def classification_ids(status: int, body: Any) -> list[str]:
    """The request ids a classification answer names, in input order; [] when it names none."""
    if not isinstance(body, dict):
        return []
    if 200 <= status < 300:
        results = body.get("results", [body])
        return [r["request_id"] for r in results if isinstance(r, dict) and isinstance(r.get("request_id"), str)]
    error = body.get("error")
    ids = error.get("request_ids") if isinstance(error, dict) else None
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []
