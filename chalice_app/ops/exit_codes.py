"""The exit codes every ops command shares: 2 for what the command refuses (its message says what to change), 1 when
AWS refuses, 0 when done."""

from __future__ import annotations

import sys
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError


def exit_code(tool: str, run: Callable[[], None], refusals: tuple[type[Exception], ...]) -> int:
    """Run one command, printing a refusal as `<tool>: <message>` on stderr."""
    try:
        run()
    except refusals as exc:
        print(f"{tool}: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"{tool}: AWS refused: {exc}", file=sys.stderr)
        return 1
    return 0
