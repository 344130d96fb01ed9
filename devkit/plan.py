"""A deployment as one plan, run by a real executor or by a printing one: `--dry-run` prints what a run does.

Chalice deploys this way (chalice/deploy/planner.py and executor.py): its planner lists the API calls, its Executor
makes them and its DisplayOnlyExecutor prints them. The deployments here wait, test and roll back between calls, so
a step holds the few calls that belong together (a create unless a describe finds it; a create or update, its wait,
the test request and the rollback) beside the function that makes them. Later steps read earlier steps' results by
name, as Chalice's instructions read its variables; a value that only a run can know is printed as `<what it is>`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

C = TypeVar("C")  # what the real executor acts through: the AWS clients, and the runners of commands and requests
Done = dict[str, Any]  # the results of the steps run so far, by step name


class Call(NamedTuple):
    """One call of a step: an AWS operation, a command or an HTTP request, with its parameters (a command line as
    text); `when` says when it is made, if not always."""

    service: str
    operation: str
    params: dict[str, Any] | str
    when: str = ""

    @property
    def detail(self) -> str:
        return self.params if isinstance(self.params, str) else json.dumps(self.params, indent=2)

    def __str__(self) -> str:
        comment = f"  # {self.when}" if self.when else ""
        return f"{self.service}.{self.operation}{comment}\n{self.detail}"


@dataclass(frozen=True)
class Step(Generic[C]):
    """The calls one step makes (what a dry run prints) and the function that makes them, given the clients and the
    results of the steps before it. A step that starts another tool shows that tool's own dry run (`dry_run`)."""

    name: str
    calls: Sequence[Call]
    run: Callable[[C, Done], Any]
    title: str = ""
    dry_run: Callable[[], None] | None = None


def execute(plan: Sequence[Step[C]], clients: C) -> Done:
    """The real executor: each step in order; what each one returned, by name."""
    done: Done = {}
    for step in plan:
        done[step.name] = step.run(clients, done)
    return done


def as_comment(call: Call) -> str:
    """A call as a shell comment over its parameters: a printed plan whose commands are runnable lines."""
    return f"# {call.service}.{call.operation}{f' {call.when}' if call.when else ''}\n{call.detail}"


def show(plan: Sequence[Step[Any]], render: Callable[[Call], str] = str) -> None:
    """The printing executor: every call of every step in order, none of them made (so no credentials needed)."""
    for step in plan:
        if step.title:
            print(f"# {step.title}", flush=True)
        for call in step.calls:
            print(render(call), flush=True)
        if step.dry_run is not None:
            step.dry_run()
