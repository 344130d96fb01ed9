"""A short fine-tune that continues a trained model folder on new labels plus a replay sample of its training rows.

    python -m training_jobs.warm_start --from artifacts/model --model-dir OUT [--labels feedback.tsv]
        [--replay 2000] [--epochs 1] [--seed 13]

Training from scratch takes minutes of CPU per candidate; continuing the current model takes well under one, which
is what lets a week of labels be measured at several budgets and seeds. The replay sample (seeded rows of the
model's own training split) keeps it from forgetting what it learnt while it reads the few new rows. Everything else
is the folder's: its splits rebuilt from the data (the same valid rows calibrate, the same judge stays out), its
recipe (distillation included), tokenizer and max length. `training.json` records the recipe unchanged under
`hyperparameters` (a later `make retrain` inherits that, not the short fine-tune) and the fine-tune under
`warm_start`. Run it with no labels to get the control every labelled run is compared with: the same steps on the
replay sample alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model.artifact import read_metadata
from model.classifier import HeadlineClassifier, load_tokenizer
from model.encoders import EncoderUnavailableError
from model.labels import LabelMap
from training_jobs.config import TEACHER_FILE, Hyperparameters, default_data_dir
from training_jobs.data import DataError, Example, Splits, clean, normalise_title, read_examples, splits_of_model
from training_jobs.distributed import init_distributed
from training_jobs.fit import fit
from training_jobs.train import (
    TrainingData,
    read_teacher,
    score,
    seed_everything,
    training_metadata,
    write_model_folder,
)

log = logging.getLogger("training_jobs.warm_start")


@dataclasses.dataclass(frozen=True)
class FineTune:
    """What the short fine-tune changes of the recipe."""

    epochs: int = 1
    learning_rate: float = 3e-5
    head_learning_rate: float = 3e-4
    replay: int = 2000
    seed: int = 13

    def hyperparameters(self, recipe: Hyperparameters) -> Hyperparameters:
        return dataclasses.replace(recipe, epochs=self.epochs, learning_rate=self.learning_rate,
                                   head_learning_rate=self.head_learning_rate, seed=self.seed)


def new_rows(labels: Path | None, splits: Splits) -> list[Example]:
    """The labelled rows to learn, minus any title of valid, test or the judge (they must stay unseen)."""
    if labels is None:
        return []
    unseen = {normalise_title(ex.title) for part in (splits.valid, splits.test, splits.judge) for ex in part}
    return [ex for ex in clean(read_examples(labels))[0] if normalise_title(ex.title) not in unseen]


def fine_tune_splits(splits: Splits, new: Sequence[Example], replay: int, seed: int) -> tuple[Splits, int]:
    """The splits with training replaced by the new rows plus `replay` seeded rows of the old training split
    (none of the new titles), shuffled; and how many were replayed."""
    titles = {normalise_title(ex.title) for ex in new}
    old = [ex for ex in splits.train if normalise_title(ex.title) not in titles]
    rng = random.Random(seed)
    replayed = rng.sample(old, min(replay, len(old)))
    train = [*new, *replayed]
    rng.shuffle(train)
    return dataclasses.replace(splits, train=train), len(replayed)


def warm_start(source: Path, output: Path, data: Path, labels: Path | None, tune: FineTune,
               teacher: Path = TEACHER_FILE) -> dict[str, Any]:
    """Fine-tune the folder `source` into `output`; returns the new folder's training.json."""
    metadata = read_metadata(source)
    recipe = Hyperparameters(**metadata["hyperparameters"])
    hp = tune.hyperparameters(recipe)
    seed_everything(hp.seed)
    label_map = LabelMap.load(source)
    splits = splits_of_model(source, data)
    new = new_rows(labels, splits)
    splits, replayed = fine_tune_splits(splits, new, tune.replay, tune.seed)
    data_ = TrainingData(splits, metadata["encoder"], load_tokenizer(source), metadata["max_length"])
    if hp.distill_weight:
        data_.teacher, data_.teacher_meta = read_teacher(teacher, splits, label_map)
    model = HeadlineClassifier.from_model_dir(source)
    if hp.freeze_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    log.info("warm start from %s: %d new rows + %d replayed, %d epoch(s)", metadata["model_version"], len(new),
             replayed, hp.epochs)
    ddp = init_distributed()
    fitted = fit(model, data_.tokenizer, splits, data_.max_length, label_map, hp, ddp, data_.teacher)
    model.load_state_dict(fitted.best_state)
    model.eval()
    scored = score(model, data_, label_map, hp, fitted.history)
    recorded = [*metadata.get("data", {}).get("extra_data", []), *([str(labels)] if labels else [])]
    args = argparse.Namespace(model_dir=output, limit=0, extra_data=recorded, output_data_dir=None)
    record = training_metadata(args, recipe, data_, model, scored, fitted, ddp)
    record["warm_start"] = {"from": metadata["model_version"], "labels": str(labels) if labels else None,
                            "new_rows": len(new), "replayed": replayed, **dataclasses.asdict(tune)}
    write_model_folder(args, model, data_, label_map, record, scored, fitted)
    return record


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    tune = FineTune()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", type=Path, required=True, help="the trained model folder to continue")
    parser.add_argument("--model-dir", type=Path, required=True, help="where the fine-tuned folder goes")
    parser.add_argument("--labels", type=Path, help="the new labelled rows (an exported feedback TSV); none: the "
                                                    "control run on the replay sample alone")
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="the data the source was trained on")
    parser.add_argument("--replay", type=int, default=tune.replay, help="old training rows replayed with the new")
    parser.add_argument("--epochs", type=int, default=tune.epochs)
    parser.add_argument("--learning-rate", type=float, default=tune.learning_rate)
    parser.add_argument("--head-learning-rate", type=float, default=tune.head_learning_rate)
    parser.add_argument("--seed", type=int, default=tune.seed, help="the replay sample's and the training's")
    parser.add_argument("--teacher", type=Path, default=TEACHER_FILE)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    tune = FineTune(args.epochs, args.learning_rate, args.head_learning_rate, args.replay, args.seed)
    try:
        record = warm_start(args.source, args.model_dir, args.data, args.labels, tune, args.teacher)
    except (DataError, EncoderUnavailableError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    metrics = record["metrics"]
    print(f"{record['model_version']}: " + ", ".join(f"{name} accuracy {values['accuracy']:.4f}"
                                                       for name, values in metrics.items()))
    print(f"model written to {args.model_dir} in {record['train_seconds']:.0f} s of training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
