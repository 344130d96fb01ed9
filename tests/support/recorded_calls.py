"""What a deployment really sends, beside what its dry run prints: the check that a run and its dry run cannot drift
apart (devkit/plan.py).

Calls are (service, operation) pairs, as a dry run prints them (`sagemaker.create_model`, `# chalice.deploy ...`).
`recorded_calls` notes every AWS request this process sends as boto3 sends it, whatever client sends it (waiters
and paginators included), and an S3 upload once, as `upload_file` (not as the PutObject or multipart requests it is
made of). Commands and HTTP requests are noted by the stand-ins a test gives the deployment (`command_call`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import S3Transfer
from botocore import xform_name
from botocore.client import BaseClient

Call = tuple[str, str]


class CallLog(list[Call]):
    """The calls made so far, in order; a test's stand-ins add the commands and HTTP requests they receive."""

    def __init__(self) -> None:
        super().__init__()
        self.pauses: list[bool] = []  # also set during an upload: s3transfer sends its requests from its own threads

    @contextmanager
    def paused(self) -> Iterator[None]:
        """What a test's stand-in does on AWS to play its part (`chalice deploy` creating a REST API) is no call of
        the deployment's."""
        self.pauses.append(True)
        try:
            yield
        finally:
            self.pauses.pop()


@contextmanager
def recorded_calls() -> Iterator[CallLog]:
    """The AWS calls made inside the block, in order."""
    log = CallLog()
    send, upload = BaseClient._make_api_call, S3Transfer.upload_file

    def recording_send(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if not log.pauses:
            log.append((client.meta.service_model.service_name, xform_name(operation)))
        return send(client, operation, params)

    def recording_upload(transfer: S3Transfer, *args: Any, **kwargs: Any) -> Any:
        if not log.pauses:
            log.append(("s3", "upload_file"))
        with log.paused():
            return upload(transfer, *args, **kwargs)

    BaseClient._make_api_call = recording_send  # type: ignore[method-assign]
    S3Transfer.upload_file = recording_upload  # type: ignore[method-assign]
    try:
        yield log
    finally:
        BaseClient._make_api_call = send  # type: ignore[method-assign]
        S3Transfer.upload_file = upload  # type: ignore[method-assign]


def command_call(argv: Sequence[str]) -> Call:
    """A command as its dry run names it: `python -m MODULE SUB ...` as (MODULE, SUB), `PROGRAM SUB ...` as
    (PROGRAM, SUB)."""
    if len(argv) > 3 and argv[1] == "-m":
        return argv[2], argv[3]
    return Path(argv[0]).name, argv[1]


def printed_calls(out: str, commented: bool = False) -> list[Call]:
    """The calls a dry run printed: lines `service.operation ...`, or `# service.operation ...` in the ops tools'
    commented form (whose other comment lines are step titles, and whose plain lines are another tool's dry run)."""
    prefix = "# " if commented else ""
    calls = []
    for line in out.splitlines():
        word = line.removeprefix(prefix).split(" ", 1)[0] if line.startswith(prefix) else ""
        service, dot, operation = word.rpartition(".")
        if dot and service[:1].isalpha() and operation.isidentifier():
            calls.append((service, operation))
    return calls


def run_then_dry_run(main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture[str],
                     commented: bool = False) -> tuple[CallLog, list[Call]]:
    """A command line's `main(argv)`, then its dry run: the calls the run made, which the dry run must print (in its
    order), and the calls the dry run printed (`commented` as in `printed_calls`). The dry run must send no AWS
    request."""
    with recorded_calls() as made:
        assert main(argv) == 0
    capsys.readouterr()
    with recorded_calls() as sent:
        assert main([*argv, "--dry-run"]) == 0
    assert sent == [], "the dry run sent AWS requests"
    printed = printed_calls(capsys.readouterr().out, commented)
    assert_printed(made, printed)
    return made, printed


def first_seen(calls: Sequence[Call]) -> list[Call]:
    return list(dict.fromkeys(calls))


def assert_printed(made: Sequence[Call], printed: Sequence[Call]) -> None:
    """Every call a run made is one its dry run printed, and the run went through the printed list forwards: each
    call is a printed one at or after the place of the call before it (a call may repeat in place, as a wait polls or
    a loop goes over items). So a call made again after the plan has moved past it is a call the plan does not
    print there, and fails too."""
    unprinted = [call for call in first_seen(made) if call not in printed]
    assert not unprinted, f"{unprinted} made, but not in the dry run, which prints {list(printed)}"
    place = 0
    for number, call in enumerate(made):
        try:
            place = list(printed).index(call, place)
        except ValueError:
            raise AssertionError(f"{call} made (call {number + 1} of {list(made)}) after the point where the dry run "
                                 f"prints it, in {list(printed)}") from None


def assert_all_made(printed: Sequence[Call], made: Sequence[Call]) -> None:
    """Every call a dry run printed was made by one of the runs (`made`: all their calls together)."""
    unmade = [call for call in first_seen(printed) if call not in set(made)]
    assert not unmade, f"{unmade} printed by the dry run, but never made"
