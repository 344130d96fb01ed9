"""The end-to-end fixture: one local stack per test module, started as `make local` starts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.local_stack_testing import RunningStack, running_stack


@pytest.fixture(scope="module")
def stack(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tiny_model_dir, tmp_path_factory.mktemp("local_stack")) as running:
        yield running
