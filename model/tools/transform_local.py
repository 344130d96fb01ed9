"""The Batch Transform contract against a local endpoint: the input split by line into mini-batches, each POSTed to
the container's /invocations as SageMaker does, the answers assembled in order. Tried without AWS (docs/serving.md).
"""

from __future__ import annotations

import gzip
import os
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from tqdm.auto import tqdm

from model.serving.inference import JSON_LINES
from model.tools.transform_contract import INVOCATION_TIMEOUT_S, OUTPUT_SUFFIX, Counts, TransformError, count_answers


def mini_batches(lines: Iterable[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    """Whole lines packed up to `max_bytes` per batch, as MultiRecord does; a line alone above it is an error."""
    batch: list[bytes] = []
    size = 0
    for number, line in enumerate(lines, start=1):
        if len(line) > max_bytes:
            raise TransformError(f"line {number} is {len(line):,} bytes, above the {max_bytes:,}-byte payload limit")
        if batch and size + len(line) > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += len(line)
    if batch:
        yield batch


def invoke(url: str, batch: Sequence[bytes], timeout_s: float = INVOCATION_TIMEOUT_S) -> list[bytes]:
    """POST one mini-batch to the container's /invocations; its answer must hold one line per line sent."""
    request = urllib.request.Request(f"{url}/invocations", data=b"".join(batch), method="POST",
                                     headers={"Content-Type": JSON_LINES, "Accept": JSON_LINES})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = response.read().split(b"\n")
    except urllib.error.HTTPError as exc:
        raise TransformError(f"the container answered {exc.code}: {exc.read()[:500]!r}") from exc
    if len(answer) != len(batch):
        raise TransformError(f"the container answered {len(answer)} line(s) to a mini-batch of {len(batch)}")
    return answer


def in_order(pool: ThreadPoolExecutor, call: Callable[[Any], Any], items: Iterable[Any], depth: int) -> Iterator[Any]:
    """`pool.map` with at most `depth` calls in flight: the input is read as it is sent, never all at once."""
    pending: deque[Future[Any]] = deque()
    for item in items:
        pending.append(pool.submit(call, item))
        if len(pending) >= depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def input_files(path: Path) -> list[Path]:
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    missing = [str(p) for p in files if not p.is_file()]
    if not files or missing:
        raise TransformError(f"{', '.join(missing) or path}: no input file")
    return files


def open_lines(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # type: ignore[return-value]


def transform_file(url: str, source: Path, output_dir: Path, max_bytes: int, max_concurrent: int) -> Counts:
    """One input file to OUTPUT/<name>.out: `max_concurrent` mini-batches in flight, answers assembled in order."""
    target = output_dir / f"{source.name}{OUTPUT_SUFFIX}"
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    total = Counts(1)
    try:
        with ExitStack() as files:
            lines = files.enter_context(open_lines(source))
            out = files.enter_context(open(scratch, "wb"))
            pool = files.enter_context(ThreadPoolExecutor(max_concurrent, thread_name_prefix="transform"))
            bar = files.enter_context(tqdm(desc=source.name, unit=" lines"))
            for answer in in_order(pool, partial(invoke, url), mini_batches(lines, max_bytes), max_concurrent):
                out.write(b"\n".join(answer) + b"\n")  # AssembleWith=Line: a newline after each answer
                counts = count_answers(answer)
                total = Counts(1, total.lines + counts.lines, total.errors + counts.errors)
                bar.update(counts.lines)
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)
    return total


def run_local(url: str, source: Path, output_dir: Path, max_bytes: int, max_concurrent: int) -> Counts:
    """Every file of `source` (a file or a folder) through the local endpoint into `output_dir`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    total = Counts()
    for path in input_files(source):
        total += transform_file(url, path, output_dir, max_bytes, max_concurrent)
    return total
