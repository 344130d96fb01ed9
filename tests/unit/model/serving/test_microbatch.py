"""The micro-batcher: requests queued while the model is busy share the next call, each gets its own rows; a
closed batcher holds no batch open."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from model.serving.microbatch import MicroBatcher


class GatedModel:
    """Answers row i with [len(headline i)]; the first call blocks until released, so a queue builds up."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.first_call_started = threading.Event()
        self.release = threading.Event()

    def predict_proba(self, headlines: Sequence[str]) -> np.ndarray:
        self.calls.append(list(headlines))
        if len(self.calls) == 1:
            self.first_call_started.set()
            self.release.wait(10)
        if any(h == "boom" for h in headlines):
            raise RuntimeError("model failed")
        return np.array([[len(h)] for h in headlines], dtype=np.float32)


async def wait_for_first_call(model: GatedModel) -> None:
    await asyncio.get_running_loop().run_in_executor(None, model.first_call_started.wait, 10)


async def until_waiting(batcher: MicroBatcher, requests: int) -> None:
    """Let the loop run until the batcher holds this many requests (at most 10 s)."""
    async def poll() -> None:
        while batcher.waiting != requests:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), 10)


def test_requests_queued_during_a_call_run_together_in_the_next_one() -> None:
    async def scenario() -> tuple[list, GatedModel]:
        model = GatedModel()
        batcher = MicroBatcher(model.predict_proba, max_batch=32)
        await batcher.start()
        first = asyncio.create_task(batcher.predict_proba(["a"]))
        await wait_for_first_call(model)
        queued = [asyncio.create_task(batcher.predict_proba(["bb", "ccc"])),
                  asyncio.create_task(batcher.predict_proba(["dddd"]))]
        await until_waiting(batcher, 3)
        model.release.set()
        results = await asyncio.gather(first, *queued)
        await batcher.stop()
        return results, model

    results, model = asyncio.run(scenario())
    assert model.calls == [["a"], ["bb", "ccc", "dddd"]]
    assert [r.probabilities[:, 0].tolist() for r in results] == [[1], [2, 3], [4]]
    assert [(r.batch_headlines, r.batch_requests) for r in results] == [(1, 1), (3, 2), (3, 2)]


def test_a_batch_never_exceeds_max_batch_headlines() -> None:
    async def scenario() -> GatedModel:
        model = GatedModel()
        batcher = MicroBatcher(model.predict_proba, max_batch=3)
        await batcher.start()
        first = asyncio.create_task(batcher.predict_proba(["a"]))
        await wait_for_first_call(model)
        rest = [asyncio.create_task(batcher.predict_proba(["x"] * n)) for n in (2, 2, 1)]
        await until_waiting(batcher, 4)
        model.release.set()
        await asyncio.gather(first, *rest)
        await batcher.stop()
        return model

    assert [len(call) for call in asyncio.run(scenario()).calls] == [1, 2, 3]


def test_a_failing_call_fails_its_requests_and_the_batcher_lives_on() -> None:
    async def scenario() -> np.ndarray:
        model = GatedModel()
        model.release.set()
        batcher = MicroBatcher(model.predict_proba)
        await batcher.start()
        with pytest.raises(RuntimeError, match="model failed"):
            await batcher.predict_proba(["boom"])
        result = await batcher.predict_proba(["fine"])
        await batcher.stop()
        return result.probabilities

    assert asyncio.run(scenario()).tolist() == [[4.0]]


def test_requests_that_gave_up_are_not_computed() -> None:
    async def scenario() -> GatedModel:
        model = GatedModel()
        batcher = MicroBatcher(model.predict_proba)
        await batcher.start()
        first = asyncio.create_task(batcher.predict_proba(["a"]))
        await wait_for_first_call(model)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher.predict_proba(["abandoned"]), 0.01)
        kept = asyncio.create_task(batcher.predict_proba(["kept"]))
        await until_waiting(batcher, 2)
        model.release.set()
        await asyncio.gather(first, kept)
        await batcher.stop()
        return model

    assert asyncio.run(scenario()).calls == [["a"], ["kept"]]


def test_waiting_counts_each_request_until_it_is_answered() -> None:
    async def scenario() -> list[int]:
        model = GatedModel()
        batcher = MicroBatcher(model.predict_proba)
        await batcher.start()
        counts = [batcher.waiting]
        first = asyncio.create_task(batcher.predict_proba(["a"]))
        await wait_for_first_call(model)
        counts.append(batcher.waiting)
        second = asyncio.create_task(batcher.predict_proba(["b"]))
        await until_waiting(batcher, 2)
        model.release.set()
        await asyncio.gather(first, second)
        counts.append(batcher.waiting)
        await batcher.stop()
        return counts

    assert asyncio.run(scenario()) == [0, 1, 0]


def test_closing_runs_the_batch_held_open_at_once() -> None:
    """A stopping server closes its batchers: a batch waiting minutes for more requests runs now."""
    async def scenario() -> tuple[list[float], GatedModel]:
        model = GatedModel()
        model.release.set()
        batcher = MicroBatcher(model.predict_proba, max_batch=32, max_wait_ms=600_000)
        await batcher.start()
        held = asyncio.create_task(batcher.predict_proba(["held"]))
        await until_waiting(batcher, 1)
        batcher.close()
        result = await asyncio.wait_for(held, 10)
        late = await asyncio.wait_for(batcher.predict_proba(["late"]), 10)  # and no later batch waits either
        await batcher.stop()
        return [*result.probabilities[:, 0], *late.probabilities[:, 0]], model

    answers, model = asyncio.run(scenario())
    assert answers == [4, 4]
    assert model.calls == [["held"], ["late"]]


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(lambda h: np.zeros((len(h), 1)), max_batch=0)
