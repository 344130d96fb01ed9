"""Load profiles (step, spike) of the LoadTestShape."""

from __future__ import annotations

import pytest

from loadtest.profiles import build_profile, stage_at


def test_step_climbs_in_four_equal_steps_to_all_users_then_stops() -> None:
    stages = build_profile("step", users=32, duration_s=60, spawn_rate=8)
    assert [stage_at(stages, t) for t in (0, 14.9, 15, 30, 45, 59.9)] == [
        (8, 8), (8, 8), (16, 8), (24, 8), (32, 8), (32, 8)]
    assert stage_at(stages, 60) is None


def test_spike_bursts_to_all_users_at_once_and_comes_back() -> None:
    stages = build_profile("spike", users=32, duration_s=100, spawn_rate=4)
    assert stage_at(stages, 10) == (8, 4)
    assert stage_at(stages, 45) == (32, 32.0)  # the whole burst within one second
    assert stage_at(stages, 70) == (8, 32.0)  # the extra users leave as fast
    assert stage_at(stages, 100) is None


def test_a_profile_keeps_at_least_one_user() -> None:
    assert stage_at(build_profile("step", users=2, duration_s=8, spawn_rate=1), 0) == (1, 1)


@pytest.mark.parametrize(("name", "users", "duration", "rate", "message"), [
    ("ramp", 32, 60, 1, "unknown load profile"),
    ("step", 0, 60, 1, "users >= 1"),
    ("spike", 4, 0, 1, "positive duration"),
    ("spike", 4, 60, 0, "spawn rate"),
])
def test_impossible_profiles_are_clear_errors(name: str, users: int, duration: float, rate: float,
                                              message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_profile(name, users, duration, rate)
