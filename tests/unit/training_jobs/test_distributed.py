"""Data-parallel training: batch sharding; two torchrun processes (Gloo on CPU) that average their gradients and so
end with the same weights as one process stepping on both shares; and two processes producing one model folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from model.predict import TorchPredictor
from tests.support import ddp_steps
from training_jobs.config import REPO_ROOT
from training_jobs.distributed import Distributed, init_distributed

TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_get_disjoint_equal_shares(world_size: int) -> None:
    batches = [[i] for i in range(10)]
    shares = [Distributed(rank, world_size, torch.device("cpu")).shard(batches) for rank in range(world_size)]
    assert len({len(share) for share in shares}) == 1
    seen = [b[0] for share in shares for b in share]
    assert len(seen) == len(set(seen)) == 10 - 10 % world_size


def test_one_process_is_plain_training(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ddp = init_distributed()
    model = nn.Linear(2, 2)
    assert (ddp.rank, ddp.world_size, ddp.is_main) == (0, 1, True)
    assert ddp.wrap(model) is model


@pytest.mark.slow  # starts two processes
def test_two_ranks_average_their_gradients_and_end_with_identical_weights(tiny_encoder_dir: Path,
                                                                         tmp_path: Path) -> None:
    run = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "tests.support.ddp_steps",
                          str(tiny_encoder_dir), str(tmp_path)], cwd=REPO_ROOT,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1))
    assert all(torch.equal(rank0[name], rank1[name]) for name in rank0)  # bit for bit, every tensor
    # One process stepping on both ranks' batches of each step together: the mean of their gradients.
    alone, steps = Distributed(0, 1, torch.device("cpu")), ddp_steps.BATCHES
    together = ddp_steps.train_steps(tiny_encoder_dir, alone, [steps[0] + steps[1], steps[2] + steps[3]])
    untrained = ddp_steps.train_steps(tiny_encoder_dir, alone, [])
    assert not torch.equal(rank0["head.3.weight"], untrained["head.3.weight"])  # the steps did move the weights
    for name, tensor in together.items():
        torch.testing.assert_close(rank0[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
def test_torchrun_two_processes_write_one_model(tiny_encoder_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "training_jobs.train",
               "--base-model", str(tiny_encoder_dir), "--data", str(data_dir), "--model-dir", str(model_dir),
               "--limit", "256", "--epochs", "2", "--max-length", "32"]
    run = subprocess.run(command, cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=300)

    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("model written to") == 1  # rank 1 trains but neither reports nor writes
    metadata = json.loads((model_dir / "training.json").read_text())
    assert metadata["world_size"] == 2
    assert [h["epoch"] for h in json.loads((model_dir / "metrics.json").read_text())["history"]] == [1, 2]
    probabilities = TorchPredictor(model_dir).predict_proba(["Stocks fall as the central bank raises rates"])
    assert probabilities.shape == (1, 4)
