"""The epoch loop of training: length-bucketed shuffled batches, AdamW with linear warm-up and decay, mixed precision
on CUDA, one shard of the batches per torchrun rank; rank 0 validates after each epoch and keeps the best weights."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from model.classifier import HeadlineClassifier
from model.labels import LabelMap
from model.predict import predict_proba
from training_jobs.config import Hyperparameters
from training_jobs.data import Example, Splits
from training_jobs.distributed import Distributed
from training_jobs.evaluate import evaluate_probabilities

log = logging.getLogger("training_jobs.train")


@dataclass
class Fitted:
    """What the epoch loop leaves: the curves and the weights of the best epoch by validation macro-F1."""

    history: list[dict[str, float]] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    seconds: float = 0.0


def fit(model: HeadlineClassifier, tokenizer: PreTrainedTokenizerBase, splits: Splits, max_length: int,
        labels: LabelMap, hp: Hyperparameters, ddp: Distributed, teacher: np.ndarray | None = None) -> Fitted:
    """The epoch loop: AdamW with linear warm-up and decay, mixed precision on CUDA; rank 0 validates each epoch
    and keeps the best weights. `teacher`: probabilities per training row (NaN where it has none) to distil."""
    optimizer = build_optimizer(model, hp)
    train_ids = _encode(tokenizer, splits.train, max_length)
    targets = torch.tensor([labels.index_of_category(ex.category) for ex in splits.train])
    soft = None if teacher is None else torch.from_numpy(teacher)
    steps_per_epoch = math.ceil(len(train_ids) / hp.train_batch_size) // ddp.world_size
    total_steps = steps_per_epoch * hp.epochs
    step = TrainingStep(ddp.wrap(model), model, optimizer,
                        get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total_steps), total_steps),
                        torch.amp.GradScaler("cuda", enabled=ddp.device.type == "cuda"), hp.max_grad_norm, ddp.device,
                        TargetLoss(hp.distill_weight, hp.distill_temperature))
    rng = random.Random(hp.seed)
    fitted, best_f1 = Fitted(), -1.0
    started = time.monotonic()
    for epoch in tqdm(range(1, hp.epochs + 1), desc="epochs", unit="epoch"):
        model.train()
        batches = ddp.shard(training_batches([len(ids) for ids in train_ids], hp.train_batch_size, rng))
        epoch_loss = 0.0
        for batch in tqdm(batches, desc=f"epoch {epoch}", unit="step", leave=False):
            padded = tokenizer.pad({"input_ids": [train_ids[i] for i in batch]}, return_tensors="pt")
            loss = step(padded, targets[batch], None if soft is None else soft[batch])
            fitted.step_losses.append(loss)
            epoch_loss += loss * len(batch)
        if not ddp.is_main:
            continue
        valid = _validate(model, tokenizer, splits.valid, max_length, labels, hp, ddp.device)
        fitted.history.append({"epoch": epoch, "train_loss": epoch_loss / sum(map(len, batches)),
                               "valid_accuracy": valid["accuracy"], "valid_macro_f1": valid["macro_f1"]})
        log.info("epoch %d/%d: train loss %.4f, valid accuracy %.4f, valid macro-F1 %.4f",
                 epoch, hp.epochs, fitted.history[-1]["train_loss"], valid["accuracy"], valid["macro_f1"])
        if valid["macro_f1"] > best_f1:
            best_f1 = valid["macro_f1"]
            fitted.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    fitted.seconds = time.monotonic() - started
    return fitted


@dataclass(frozen=True)
class TargetLoss:
    """Cross-entropy on the labels, mixed with distillation where a row has teacher scores:
    (1 - w) * CE + w * T^2 * KL(teacher_T || student_T), as in Hinton et al. (2015)."""

    distill_weight: float = 0.0
    temperature: float = 2.0

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, soft: torch.Tensor | None = None) -> torch.Tensor:
        hard = nn.functional.cross_entropy(logits, targets, reduction="none")
        taught = torch.zeros_like(targets, dtype=torch.bool) if soft is None else ~soft.isnan().any(dim=1)
        if not self.distill_weight or not taught.any():
            return hard.mean()
        teacher = nn.functional.log_softmax(soft[taught].clamp_min(1e-8).log() / self.temperature, dim=1)
        student = nn.functional.log_softmax(logits[taught] / self.temperature, dim=1)
        kl = nn.functional.kl_div(student, teacher, log_target=True, reduction="none").sum(dim=1)
        mixed = hard.clone()
        mixed[taught] = (1 - self.distill_weight) * hard[taught] + self.distill_weight * self.temperature ** 2 * kl
        return mixed.mean()


@dataclass
class TrainingStep:
    """One optimisation step on one batch: forward (autocast on CUDA), scaled backward, clipping, update."""

    replica: nn.Module  # the module to call: DDP across ranks, else the model itself
    model: HeadlineClassifier
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    max_grad_norm: float
    device: torch.device
    loss_fn: TargetLoss = field(default_factory=TargetLoss)

    def __call__(self, padded: Mapping[str, torch.Tensor], targets: torch.Tensor,
                 soft: torch.Tensor | None = None) -> float:
        """The batch's mean loss, after the step; `soft`: the teacher's probabilities per row (NaN where none)."""
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.device.type == "cuda"):
            logits = self.replica(padded["input_ids"].to(self.device), padded["attention_mask"].to(self.device))
            loss = self.loss_fn(logits.float(), targets.to(self.device), None if soft is None else soft.to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.item()


def training_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length examples: random order, little padding."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        sorted_chunk = sorted(order[start:start + chunk], key=lengths.__getitem__)
        batches += [sorted_chunk[i:i + batch_size] for i in range(0, len(sorted_chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def build_optimizer(model: HeadlineClassifier, hp: Hyperparameters) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and LayerNorm; the new head learns faster than the encoder."""
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = hp.head_learning_rate if name.startswith("head.") else hp.learning_rate
        decay = 0.0 if param.ndim == 1 else hp.weight_decay
        groups.setdefault((lr, decay), []).append(param)
    return torch.optim.AdamW([{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()])


def _encode(tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example], max_length: int) -> list[list[int]]:
    return tokenizer([ex.title for ex in examples], truncation=True, max_length=max_length)["input_ids"]


def _validate(model: HeadlineClassifier, tokenizer: PreTrainedTokenizerBase, valid: Sequence[Example],
              max_length: int, labels: LabelMap, hp: Hyperparameters, device: torch.device) -> dict[str, Any]:
    titles = [ex.title for ex in valid]
    return evaluate_probabilities(predict_proba(model, tokenizer, titles, max_length, hp.eval_batch_size, device),
                                  valid, labels)
