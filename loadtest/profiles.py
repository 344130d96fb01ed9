"""Load profiles over time for Locust's `LoadTestShape` (loadtest/shape.py): pure functions, tested without Locust.

Both scale with the run's own options: `users` is the peak, `duration_s` the whole run.
- step:  a quarter of the users, then half, three quarters and all, each for a quarter of the run: where
         does latency start to climb?
- spike: a quarter of the users for 40% of the run, all of them at once for 20%, back to a quarter for the
         last 40%: does the system absorb a burst, and does latency recover after it?
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

STEADY = "steady"  # no shape: Locust's own --users/--spawn-rate/--run-time
# Tasks per second each user aims at: 32 users offer about 128 requests/s, some 160 classifications/s (a fifth of
# the tasks are look-ups and feedback, one in twenty a batch of 2-16 headlines).
DEFAULT_USER_RATE = 4.0


@dataclass(frozen=True)
class Stage:
    """Until `until_s` seconds into the run, hold `users` users, starting or stopping `spawn_rate` per second."""

    until_s: float
    users: int
    spawn_rate: float


def _fraction(users: int, share: float) -> int:
    return max(1, math.ceil(users * share))


def step_profile(users: int, duration_s: float, spawn_rate: float, steps: int = 4) -> list[Stage]:
    return [Stage(duration_s * n / steps, _fraction(users, n / steps), spawn_rate) for n in range(1, steps + 1)]


def spike_profile(users: int, duration_s: float, spawn_rate: float) -> list[Stage]:
    base = _fraction(users, 0.25)
    return [Stage(duration_s * 0.4, base, spawn_rate),
            Stage(duration_s * 0.6, users, float(users)),  # the burst arrives within one second
            Stage(duration_s, base, float(users))]


PROFILES: dict[str, Callable[[int, float, float], list[Stage]]] = {"step": step_profile, "spike": spike_profile}
PROFILE_NAMES = (STEADY, *PROFILES)


def build_profile(name: str, users: int, duration_s: float, spawn_rate: float) -> list[Stage]:
    """The stages of profile `name`; a clear error for an unknown name or impossible numbers."""
    if name not in PROFILES:
        raise ValueError(f"unknown load profile {name!r}; choose one of {', '.join(PROFILES)}")
    if users < 1 or duration_s <= 0 or spawn_rate <= 0:
        raise ValueError(f"a {name} profile needs users >= 1, a positive duration and spawn rate "
                         f"(got {users}, {duration_s}, {spawn_rate})")
    return PROFILES[name](users, duration_s, spawn_rate)


def stage_at(stages: Sequence[Stage], elapsed_s: float) -> tuple[int, float] | None:
    """(users, spawn rate) at `elapsed_s` seconds into the run; None once the last stage is over (stop)."""
    for stage in stages:
        if elapsed_s < stage.until_s:
            return stage.users, stage.spawn_rate
    return None
