"""Pass/fail limits of a load run (loadtest/thresholds.toml) and their check against Locust's statistics.

    python -m loadtest.thresholds --stats artifacts/loadtest/final_stats.json [--ledger ledger.json] [--profile step]

A profile's table overrides the top-level defaults; unknown names are errors, so a typo cannot switch a limit off.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from loadtest.ledger import Ledger

DEFAULT_FILE = Path(__file__).resolve().with_name("thresholds.toml")


class ThresholdsError(ValueError):
    """The thresholds file or the statistics cannot be used; the message says where and why."""


@dataclass(frozen=True)
class LoadThresholds:
    """A load run's pass/fail limits, as loadtest/thresholds.toml sets them for a profile."""

    max_failure_ratio: float
    max_p95_ms: float
    min_requests_per_s: float
    min_classifications_per_s: float | None = None  # API runs only: endpoint runs have no ledger


@dataclass(frozen=True)
class RunStats:
    """The numbers of a finished run that the thresholds are checked against."""

    requests: int
    failures: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    classifications_per_s: float | None = None

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Check:
    name: str
    bound: str  # "<=" for a maximum, ">=" for a minimum
    limit: float
    value: float
    passed: bool

    def describe(self) -> str:
        return f"{self.name} {self.value:.4g} (limit {self.bound} {self.limit:g}): {'pass' if self.passed else 'FAIL'}"


def _number(path: Path, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ThresholdsError(f"{path}: {name} must be a number >= 0, not {value!r}")
    return float(value)


def _limits(path: Path, table: dict[str, Any], where: str) -> dict[str, float]:
    known = {f.name for f in fields(LoadThresholds)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ThresholdsError(f"{path}: unknown name(s) {', '.join(unknown)} in {where}; "
                              f"known: {', '.join(sorted(known))}")
    return {name: _number(path, name, value) for name, value in table.items()}


def load_thresholds(path: Path, profile: str) -> LoadThresholds:
    """The limits for `profile`: the file's defaults, overridden by the profile's own table when it has one."""
    try:
        document = tomllib.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ThresholdsError(f"{path}: no such thresholds file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdsError(f"{path}: not valid TOML ({exc})") from exc
    tables = {name: value for name, value in document.items() if isinstance(value, dict)}
    defaults = _limits(path, {k: v for k, v in document.items() if k not in tables}, "the top level")
    overrides = _limits(path, tables.get(profile, {}), f"[{profile}]")
    try:
        return LoadThresholds(**{**defaults, **overrides})
    except TypeError as exc:
        raise ThresholdsError(f"{path}: {exc}") from exc


def read_run_stats(final_stats: Path, ledger: Ledger | None = None) -> RunStats:
    """The totals a locustfile wrote at the end of the run; classifications per second from the ledger if given."""
    try:
        stats = RunStats(**json.loads(Path(final_stats).read_text()))
    except FileNotFoundError as exc:
        raise ThresholdsError(f"{final_stats}: no statistics (did Locust run with --final-stats?)") from exc
    except (ValueError, TypeError) as exc:
        raise ThresholdsError(f"{final_stats}: not the statistics a locustfile writes ({exc})") from exc
    if ledger is None:
        return stats
    duration = ledger.duration_s()
    return replace(stats, classifications_per_s=ledger.classified / duration if duration > 0 else 0.0)


def _at_most(name: str, limit: float, value: float, ran: bool) -> Check:
    return Check(name, "<=", limit, value, ran and value <= limit)


def _at_least(name: str, limit: float, value: float, ran: bool) -> Check:
    return Check(name, ">=", limit, value, ran and value >= limit)


def check(thresholds: LoadThresholds, stats: RunStats) -> list[Check]:
    """One check per limit that applies; a run without requests fails them all."""
    ran = stats.requests > 0
    checks = [_at_most("failure ratio", thresholds.max_failure_ratio, stats.failure_ratio, ran),
              _at_most("p95 ms", thresholds.max_p95_ms, stats.p95_ms, ran),
              _at_least("requests/s", thresholds.min_requests_per_s, stats.requests_per_s, ran)]
    if thresholds.min_classifications_per_s is not None and stats.classifications_per_s is not None:
        checks.append(_at_least("classifications/s", thresholds.min_classifications_per_s,
                                stats.classifications_per_s, ran))
    return checks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stats", type=Path, required=True, help="the JSON Locust's --final-stats wrote")
    parser.add_argument("--ledger", type=Path, help="the run's ledger.json (classifications per second)")
    parser.add_argument("--thresholds", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--profile", default="steady", help="steady, step, spike or endpoint")
    args = parser.parse_args(argv)
    try:
        ledger = Ledger.load(args.ledger) if args.ledger else None
        checks = check(load_thresholds(args.thresholds, args.profile), read_run_stats(args.stats, ledger))
    except ValueError as exc:
        sys.exit(f"thresholds: {exc}")
    for item in checks:
        print(item.describe())
    sys.exit(0 if all(c.passed for c in checks) else 1)


if __name__ == "__main__":
    main()
