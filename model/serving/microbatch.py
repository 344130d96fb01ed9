"""Dynamic micro-batching: concurrent requests share one model call.

A transformer forward pass on 16 headlines costs far less than 16 passes on one. While the model is busy,
new requests queue; when it is free, everything queued (up to `max_batch` headlines) runs as one batch.
So a lone request never waits, and batches grow with the load by themselves. `max_wait_ms` > 0 also holds
a batch open that long for more requests: larger batches for a little latency, until `close()` says no more will
come (a server that is stopping). A request larger than `max_batch` runs alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np


@dataclass
class BatchResult:
    """One request's rows of a batch, and how many headlines and requests that batch held."""

    probabilities: np.ndarray
    batch_headlines: int
    batch_requests: int


@dataclass
class _Pending:
    headlines: Sequence[str]
    future: asyncio.Future[BatchResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MicroBatcher:
    """Queue requests, run them in batches on one worker thread, hand each request its rows back."""

    def __init__(self, predict_proba: Callable[[list[str]], np.ndarray], max_batch: int = 32,
                 max_wait_ms: float = 0.0, name: str = "model") -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_ms >= 0, got {max_batch} and {max_wait_ms}")
        self._predict_proba = predict_proba
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        # One thread: the model's own intra-op pool already uses every core.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"predict-{name}")
        self._queue: asyncio.Queue[_Pending] | None = None
        self._carry: _Pending | None = None
        self._worker: asyncio.Task[None] | None = None
        self._waiting = 0
        self._closing = asyncio.Event()

    @property
    def waiting(self) -> int:
        """Requests queued or in the batch being run: what a graceful stop still has to answer."""
        return self._waiting

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    def close(self) -> None:
        """Hold no batch open any more: no request will join it, so what is queued runs at once."""
        self._closing.set()

    async def stop(self) -> None:
        """Finish every queued request, then stop the idle worker and its thread."""
        if self._worker is None or self._queue is None:
            return
        await self._queue.join()
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._executor.shutdown(wait=True)

    async def predict_proba(self, headlines: Sequence[str]) -> BatchResult:
        """Probabilities for these headlines, computed together with whatever else is waiting."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        pending = _Pending(headlines)
        self._waiting += 1
        try:
            await self._queue.put(pending)
            return await pending.future
        finally:
            self._waiting -= 1

    async def _next_batch(self) -> list[_Pending]:
        """The first waiting request, then more until `max_batch` headlines or `max_wait` elapses."""
        assert self._queue is not None
        first = self._carry or await self._queue.get()
        self._carry = None
        batch, size = [first], len(first.headlines)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_batch:
            item = await self._one_more(deadline)
            if item is None:
                break
            if size + len(item.headlines) > self.max_batch:
                self._carry = item
                break
            batch.append(item)
            size += len(item.headlines)
        return batch

    async def _one_more(self, deadline: float) -> _Pending | None:
        """A queued request, or the next to arrive before `deadline` unless the batcher closes first; else None."""
        assert self._queue is not None
        if not self._queue.empty():
            return self._queue.get_nowait()
        timeout = deadline - asyncio.get_running_loop().time()
        if timeout <= 0 or self._closing.is_set():
            return None
        arrival, closing = asyncio.ensure_future(self._queue.get()), asyncio.ensure_future(self._closing.wait())
        done, _ = await asyncio.wait({arrival, closing}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (arrival, closing):
            waiter.cancel()  # an arrival cancelled before it ran leaves its request in the queue
        return arrival.result() if arrival in done else None

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = await self._next_batch()
            await self._complete([p for p in batch if not p.future.done()])  # timed-out requests are skipped
            for _ in batch:
                self._queue.task_done()

    async def _complete(self, batch: list[_Pending]) -> None:
        """Run one model call for the batch and resolve each request with its rows (or the error)."""
        if not batch:
            return
        headlines = [h for p in batch for h in p.headlines]
        try:
            probabilities = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._predict_proba, headlines)
        except Exception as exc:  # these requests fail, the worker lives on
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        start = 0
        for p in batch:
            if not p.future.done():
                rows = probabilities[start:start + len(p.headlines)]
                p.future.set_result(BatchResult(rows, len(headlines), len(batch)))
            start += len(p.headlines)
