"""devkit.day_index: the partitions a window reads (its records: tests/unit/chalice_app/chalicelib/
test_transactions_day_index.py, against the API's own reader)."""

from __future__ import annotations

import datetime as dt

from devkit.day_index import days_between


def test_a_window_over_midnight_covers_both_days() -> None:
    start = dt.datetime(2026, 3, 1, 23, 59, 30, tzinfo=dt.UTC)
    assert days_between(start, start + dt.timedelta(minutes=1)) == ["2026-03-01", "2026-03-02"]


def test_the_days_are_utc_days_whatever_the_zone_of_the_window() -> None:
    east = dt.timezone(dt.timedelta(hours=9))
    start = dt.datetime(2026, 3, 2, 8, 0, tzinfo=east)  # 23:00 UTC on 1 March
    assert days_between(start, start + dt.timedelta(hours=2)) == ["2026-03-01", "2026-03-02"]
