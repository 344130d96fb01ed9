"""A step or spike load profile (loadtest/profiles.py) for the API or endpoint locustfile.

    locust -f loadtest/locustfile.py,loadtest/shape.py --shape step -u 32 -r 8 -t 60s ...

Add this file to `-f` only to use a profile: Locust lets a shape class, when present, drive the users. The
profile scales with the run's own --users (the peak), --spawn-rate and --run-time.
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape, events

from loadtest.profiles import PROFILES, Stage, build_profile, stage_at

DEFAULT_RUN_TIME_S = 60


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument("--shape", choices=sorted(PROFILES), default="step", env_var="LOADTEST_SHAPE",
                        help="load profile over the run (with loadtest/shape.py in -f)")


class ProfileShape(LoadTestShape):
    """Users over time from the profile --shape names."""

    use_common_options = True  # the profile reads --users, --spawn-rate and --run-time
    stages: list[Stage] | None = None

    def tick(self) -> tuple[int, float] | None:
        if self.stages is None:
            options = self.runner.environment.parsed_options
            self.stages = build_profile(options.shape, options.num_users or 0, options.run_time or DEFAULT_RUN_TIME_S,
                                        options.spawn_rate)
        return stage_at(self.stages, self.get_run_time())
