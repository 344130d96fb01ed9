"""One plan, two executors (devkit/plan.py): a run makes each step's calls in order, each step given the results
of the steps before it; a dry run prints the same calls and runs no step."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.plan import Call, Done, Step, as_comment, execute, show


def steps(ran: list[str] | None = None) -> list[Step[list[str]]]:
    """Three steps; the second needs the first's result, the third starts another tool."""

    def first(log: list[str], done: Done) -> int:
        log.append("first")
        return 1

    def second(log: list[str], done: Done) -> int:
        log.append("second")
        return done["first"] + 1

    def third(log: list[str], done: Done) -> None:
        log.append("third")

    return [Step("first", [Call("s3", "head_object", {"Key": "k"}, "is it there?")], first),
            Step("second", [Call("sagemaker", "create_model", {"ModelName": "<first's>"})], second, title="the model"),
            Step("third", [Call("chalice", "deploy", "chalice deploy --stage dev")], third,
                 dry_run=lambda: print("its own dry run"))]


def test_a_run_makes_every_step_in_order_with_the_results_of_the_steps_before() -> None:
    ran: list[str] = []
    assert execute(steps(), ran) == {"first": 1, "second": 2, "third": None}
    assert ran == ["first", "second", "third"]


def test_a_dry_run_prints_every_call_in_order_and_runs_no_step(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("a dry run ran a step")

    show([Step(step.name, step.calls, refuse, step.title, step.dry_run) for step in steps()])
    assert capsys.readouterr().out == (
        's3.head_object  # is it there?\n{\n  "Key": "k"\n}\n'
        '# the model\nsagemaker.create_model\n{\n  "ModelName": "<first\'s>"\n}\n'
        "chalice.deploy\nchalice deploy --stage dev\nits own dry run\n")


def test_the_ops_tools_print_each_call_as_a_comment_over_its_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    show(steps(), as_comment)
    assert capsys.readouterr().out.splitlines()[:2] == ["# s3.head_object is it there?", "{"]
    assert as_comment(Call("chalice", "deploy", "chalice deploy --stage dev")) == \
        "# chalice.deploy\nchalice deploy --stage dev"
