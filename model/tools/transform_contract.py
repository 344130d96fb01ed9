"""What a Batch Transform run keeps to, on SageMaker and on a local endpoint alike: how the input is split and sent
(JSON Lines, whole lines per mini-batch, so many in flight) and how the answers are counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

# SageMaker's limits: MaxPayloadInMB <= 100 and MaxPayloadInMB x MaxConcurrentTransforms <= 100. 1 MB is about ten
# thousand headlines: seconds of work per request, well inside the invocation timeout.
MAX_PAYLOAD_MB = 1
MAX_CONCURRENT = 2  # a second request queued while one runs keeps the model busy between mini-batches
INVOCATION_TIMEOUT_S = 600
OUTPUT_SUFFIX = ".out"


class TransformError(RuntimeError):
    """The Transform job cannot run or did not complete; the message says why."""


@dataclass(frozen=True)
class Settings:
    """How the input is split and sent: one set of values for the AWS job and its local stand-in."""

    max_payload_mb: int = MAX_PAYLOAD_MB
    max_concurrent: int = MAX_CONCURRENT

    def __post_init__(self) -> None:
        if not 1 <= self.max_payload_mb <= 100 or self.max_payload_mb * self.max_concurrent > 100:
            raise TransformError(f"--max-payload-mb {self.max_payload_mb} x --max-concurrent {self.max_concurrent}: "
                                 "SageMaker takes 1 to 100 MB, and at most 100 MB in flight")
        if self.max_concurrent < 1:
            raise TransformError("--max-concurrent must be >= 1")

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * 1024 * 1024


@dataclass(frozen=True)
class Counts:
    objects: int = 0
    lines: int = 0
    errors: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.objects + other.objects, self.lines + other.lines, self.errors + other.errors)

    def __str__(self) -> str:
        return (f"{self.lines - self.errors:,} headlines labelled, {self.errors:,} lines answered with an error, "
                f"in {self.objects} output file(s)")


def count_answers(lines: Iterable[bytes | str]) -> Counts:
    """Answer lines and the ones that carry an `error` (blank lines of the assembled output are not answers)."""
    answered = errors = 0
    for line in lines:
        if line.strip():
            answered += 1
            errors += is_error(line)
    return Counts(1, answered, errors)


def is_error(line: bytes | str) -> bool:
    """An answer with `error`, or a line that is no JSON object at all (not what the handler writes)."""
    try:
        answer = json.loads(line)
    except ValueError:
        return True
    return not isinstance(answer, dict) or "error" in answer
