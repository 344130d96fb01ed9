"""A few optimisation steps of the real classifier through the training code's data-parallel pieces
(training_jobs.distributed and fit.TrainingStep), for tests/unit/training_jobs/test_distributed.py.

    torchrun --standalone --nproc_per_node=2 -m tests.support.ddp_steps ENCODER_DIR OUT_DIR

Each rank takes its shard of BATCHES and saves its final weights to OUT_DIR/rank<N>.pt. Dropout is off and the
optimiser is plain SGD, so a single process that steps on both ranks' batches together must land on the same
weights: that is what averaging the gradients means.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from model.classifier import HeadlineClassifier, load_tokenizer
from training_jobs.distributed import Distributed, init_distributed
from training_jobs.fit import TrainingStep

HEADLINES = ["Fed raises interest rates again", "Stocks slide as oil jumps", "New phone unveiled at the show",
             "Software update fixes the flaw", "Star couple announce divorce", "Film tops the box office",
             "Flu season starts early", "Hospital trial of a cancer drug"]
TARGETS = [0, 0, 1, 1, 2, 2, 3, 3]
BATCHES = [[0, 2], [4, 6], [1, 3], [5, 7]]  # rank 0 steps on the 1st and 3rd, rank 1 on the 2nd and 4th
LEARNING_RATE = 0.5
SEED = 7


def train_steps(encoder_dir: Path, ddp: Distributed, batches: list[list[int]]) -> dict[str, torch.Tensor]:
    """The weights after one SGD step per batch, every rank starting from the same seeded initialisation."""
    torch.manual_seed(SEED)
    model = HeadlineClassifier.from_encoder(str(encoder_dir), 4, dropout=0.0).eval()  # eval: no dropout anywhere
    tokenizer = load_tokenizer(encoder_dir)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    step = TrainingStep(ddp.wrap(model), model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0),
                        torch.amp.GradScaler("cuda", enabled=False), max_grad_norm=1.0, device=ddp.device)
    for batch in batches:
        step(tokenizer([HEADLINES[i] for i in batch], padding=True, return_tensors="pt"), torch.tensor(
            [TARGETS[i] for i in batch]))
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def main(encoder_dir: Path, out_dir: Path) -> None:
    ddp = init_distributed()
    weights = train_steps(encoder_dir, ddp, ddp.shard(BATCHES))
    torch.save(weights, out_dir / f"rank{ddp.rank}.pt")
    ddp.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
