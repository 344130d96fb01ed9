"""Settings of the training box: data location and default hyperparameters, read from the environment."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

# Not devkit.repo: a SageMaker training job ships training_jobs/ and model/ only (launch.CODE_PACKAGES).
REPO_ROOT = Path(__file__).resolve().parent.parent


SPLITS_FOLDER = "nlp100"  # the NLP-100 train/valid/test split inside the data folder
EXTRA_DATA_FILE = "corpus.tsv.gz"  # rows of other publishers: training-only extras
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "news_aggregator"  # the team's data folder, where it exists
CORPUS_FILE = "newsCorpora.csv"  # the UCI archive's data file (training_jobs/uci_archive.py fetches it)
CACHE_FOLDER = "news-classifier"
# Rows of one corpus file that local training samples by default (train.py --sample): after the story-disjoint judge
# and the 80/10/10 split, about as many training rows as the NLP-100 recipe, so the first model from the corpus takes
# about as long (measured: docs/benchmarks.md#training-on-a-sample-of-the-corpus). SageMaker jobs train on every row.
LOCAL_SAMPLE_ROWS = 25_000
# The distillation teacher's scores for the training rows of the default data (`make teacher` rebuilds it).
TEACHER_FILE = REPO_ROOT / "training_jobs" / "teacher_scores.npz"


def default_data_dir() -> Path:
    """Where the data is when none is named (the Makefile asks here): `NEWS_DATA_DIR`; else the shared folder beside
    the repository when it exists; else the UCI corpus in the user cache, a file that training downloads when it is
    missing (`uci_archive.available`)."""
    if os.environ.get("NEWS_DATA_DIR"):
        return Path(os.environ["NEWS_DATA_DIR"])
    return SHARED_DATA_DIR if SHARED_DATA_DIR.exists() else cached_corpus()


def data_cache_dir() -> Path:
    """`NEWS_CACHE_DIR`, else `news-classifier/` in the XDG cache folder (`XDG_CACHE_HOME`, else `~/.cache`): outside
    the repository, kept across clones."""
    if os.environ.get("NEWS_CACHE_DIR"):
        return Path(os.environ["NEWS_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / CACHE_FOLDER


def cached_corpus() -> Path:
    return data_cache_dir() / CORPUS_FILE


def training_channel(data: Path) -> Path:
    """What a SageMaker job trains on: a data folder's NLP-100 split folder, else the data file (maybe not yet
    downloaded) itself."""
    return splits_dir(data) if data.is_dir() else data


def splits_dir(data: Path) -> Path:
    return data / SPLITS_FOLDER


def split_file(data: Path, split: str) -> Path:
    """One file of a data folder's NLP-100 split: `train`, `valid` or `test` (the benchmark every model faces)."""
    return splits_dir(data) / f"{split}.tsv"


def extra_data(data: Path) -> list[Path]:
    """The data folder's training-only extras, when it has them."""
    path = data / EXTRA_DATA_FILE
    return [path] if path.is_file() else []


def default_model_dir() -> Path:
    """`MODEL_DIR`, else `artifacts/model/` in the repository."""
    return Path(os.environ.get("MODEL_DIR", REPO_ROOT / "artifacts" / "model"))


@dataclass
class Hyperparameters:
    """Everything that changes the trained weights; all of it is recorded in the artifact."""

    base_model: str = "auto"
    epochs: int = 3
    train_batch_size: int = 32
    eval_batch_size: int = 128
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-3
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_length: int = 0  # 0: chosen from the measured token-length distribution
    dropout: float = 0.3
    # Knowledge distillation (training_jobs.teacher): the loss's share given to the teacher's softened scores.
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    freeze_embeddings: bool = True
    seed: int = 13
    # This share of the publishers (training_jobs.holdout) never trains: their rows are the publisher-held-out check.
    holdout_publishers: float = 0.0
    # This share of the candidate stories, with every publisher that wrote in them, is the story-disjoint judge.
    judge_stories: float = 0.5

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def as_flags(self) -> dict[str, object]:
        """`{flag: value}` for every field: SageMaker hands them to train.py as `--flag value`."""
        return {name.replace("_", "-"): value for name, value in asdict(self).items()}


def parse_bool(value: str) -> bool:
    """argparse type for boolean flags; SageMaker serialises booleans as `true`/`false`."""
    if value.lower() in {"1", "true", "yes"}:
        return True
    if value.lower() in {"0", "false", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_hyperparameter_arguments(parser: argparse.ArgumentParser) -> None:
    """One typed `--flag` per Hyperparameters field, defaulting to the dataclass: the CLI of train and launch."""
    for f in fields(Hyperparameters):
        kind = parse_bool if f.type in (bool, "bool") else {"int": int, "float": float}.get(str(f.type), str)
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=f.default)


def hyperparameters_from_args(args: argparse.Namespace) -> Hyperparameters:
    return Hyperparameters(**{f.name: getattr(args, f.name) for f in fields(Hyperparameters)})


def main(argv: list[str] | None = None) -> None:
    """Print a data path, so that the Makefile need not know the data folder's layout or default."""
    parser = argparse.ArgumentParser(description="print a path of the data folder (default: NEWS_DATA_DIR, else "
                                                 "beside the repository)")
    parser.add_argument("what", choices=("data-dir", "test-split", "extra-data"))
    parser.add_argument("--data", type=Path, help="the data folder instead of the default")
    args = parser.parse_args(argv)
    data = args.data or default_data_dir()
    paths = {"data-dir": [data], "test-split": [split_file(data, "test")], "extra-data": extra_data(data)}[args.what]
    print(" ".join(str(path) for path in paths))


if __name__ == "__main__":
    main()
