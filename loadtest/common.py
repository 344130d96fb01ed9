"""What the API and endpoint locustfiles share: their options, the users' pacing and how they stop.

Options are Locust options (`locust ... --user-rate 4`), settable by environment variable too. Only locustfiles
import this module: importing Locust monkey-patches the process for gevent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locust import User, constant, constant_throughput
from locust.env import Environment
from locust.user.task import LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from devkit.news_files import default_headlines
from loadtest.profiles import DEFAULT_USER_RATE


def add_common_arguments(parser: Any) -> None:
    parser.add_argument("--headlines", type=Path, default=default_headlines(), env_var="LOADTEST_HEADLINES",
                       help="TSV of real headlines (a `title` column, or newsCorpora.csv rows; .gz too); "
                            "default: the NLP-100 test split")
    parser.add_argument("--user-rate", type=float, default=DEFAULT_USER_RATE, env_var="LOADTEST_USER_RATE",
                       help="tasks per second each user aims at (production-like arrivals); 0: no pause, "
                            "every user sends its next request as soon as the last one is answered")
    parser.add_argument("--final-stats", type=Path, env_var="LOADTEST_FINAL_STATS",
                        help="when the run stops, write Locust's all-routes totals here as JSON (what "
                             "loadtest.thresholds checks; the CSV files may miss the last second)")


def pacing(user_rate: float) -> Callable[[Any], float]:
    """Locust's wait_time for `user_rate` tasks per second per user (0: back to back)."""
    if user_rate < 0:
        raise ValueError(f"--user-rate must be >= 0, not {user_rate}")
    return constant_throughput(user_rate) if user_rate > 0 else constant(0)


class FinishesItsWait(User):
    """A user that Locust stops while it waits leaves when the wait is over, instead of being killed.

    Locust kills a waiting user. When the wait ends before the kill is delivered (a wait of 0 s, a busy event
    loop), the user has already sent its next request, and the kill interrupts it: a request the API may have
    served, whose answer nobody reads. Marked as stopping instead, the user raises StopUser at the end of its
    wait; a user in a task finishes it first, as Locust's --stop-timeout allows.
    """

    abstract = True

    def stop(self, force: bool = False) -> bool:
        if not force and self._state == LOCUST_STATE_WAITING:
            self._state = LOCUST_STATE_STOPPING
            return False
        return super().stop(force)


def save_final_stats(environment: Environment, **_: Any) -> None:
    """A test_stop listener: Locust's totals once every user has stopped, as loadtest.thresholds.RunStats reads them."""
    path = environment.parsed_options.final_stats
    if path is None:
        return
    total = environment.stats.total
    stats = {"requests": total.num_requests, "failures": total.num_failures, "requests_per_s": total.total_rps,
             **{f"p{q}_ms": total.get_response_time_percentile(q / 100) for q in (50, 95, 99)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stats, indent=1) + "\n")
