"""`make retrain`: train a candidate on the base data plus feedback, gate it against the current model, register it.

    python -m training_jobs.retrain --feedback artifacts/feedback/feedback.tsv [-- FLAGS]

Only the data differ from the current model's recorded run, so the gate compares like with like: both models answer
NLP-100 test and the story-disjoint judge now, and training_jobs.gate decides on the paired rows. A candidate that
passes is registered as a version; `make promote` (chalice_app/ops/promote.py) gives it traffic on a stage
(docs/ab-and-retraining.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.artifact import read_metadata
from model.encoders import EncoderUnavailableError
from model.labels import LabelMap
from model.onnx_export import export_model_folder
from training_jobs import train
from training_jobs.config import default_data_dir, default_model_dir, split_file
from training_jobs.data import DataError, Example, clean, read_examples, splits_of_model
from training_jobs.evaluate import STORY_DISJOINT, score_model_dir
from training_jobs.gate import Decision, Margins, decide, paired_rows
from training_jobs.registry import (
    DEFAULT_ROOT,
    ModelRegistry,
    Registration,
    VersionRecord,
    summary,
    write_json_atomically,
)

log = logging.getLogger("training_jobs.retrain")
COMPARISON_FILE = "comparison.json"
TEST_SET = "test"


@dataclass(frozen=True)
class Evaluated:
    model_dir: Path
    metrics: dict[str, Any]

    @property
    def version(self) -> str:
        return self.metrics["model_version"]

    def record(self, eval_data: Path) -> VersionRecord:
        return VersionRecord(self.version, self.model_dir, summary(self.metrics), str(eval_data))


def current_model_dir(explicit: Path | None, registry: ModelRegistry) -> Path:
    """`--current-model-dir`, else the registry's current version, else MODEL_DIR (artifacts/model)."""
    return explicit or registry.current_dir() or default_model_dir()


def inherited_flags(model_dir: Path) -> list[str]:
    """train.py flags reproducing the hyperparameters recorded in a model folder's training.json."""
    flags = []
    for name, value in read_metadata(model_dir).get("hyperparameters", {}).items():
        flags += [f"--{name.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    return flags


def candidate_train_args(args: argparse.Namespace, current_dir: Path, output: Path) -> list[str]:
    return [*inherited_flags(current_dir), "--data", str(args.data), "--test-data", str(args.eval_data),
            "--extra-data", str(args.feedback), *map(str, args.extra_data), "--model-dir", str(output),
            *args.train_args]


def train_candidate(args: argparse.Namespace, current_dir: Path, registry: ModelRegistry) -> Path:
    """Train into a scratch folder, then name it by the version it got: candidates/<version>/."""
    scratch = registry.candidate_dir(f".training-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        train.train(train.parse_args(candidate_train_args(args, current_dir, scratch)))
        target = registry.candidate_dir(read_metadata(scratch)["model_version"])
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def read_eval_examples(path: Path) -> list[Example]:
    return clean(read_examples(path), dedupe=False)[0]


def recorded_judge(model_dir: Path) -> str | None:
    return read_metadata(model_dir).get("data", {}).get("judge", {}).get("sha256")


def gate_sets(args: argparse.Namespace, candidate_dir: Path, current_dir: Path) -> tuple[dict[str, list[Example]], str]:
    """The rows both models answer for the gate: the eval data, and the story-disjoint judge when neither model
    trained on it (both record the same judge); and why the judge is left out when it is."""
    sets = {TEST_SET: read_eval_examples(args.eval_data)}
    judge = recorded_judge(candidate_dir)
    if not judge:
        return sets, "the candidate records no story-disjoint judge"
    if recorded_judge(current_dir) != judge:
        return sets, "the current model was not trained without the candidate's judge: it may have trained on its rows"
    sets[STORY_DISJOINT] = splits_of_model(candidate_dir, args.data).judge
    return sets, ""


@dataclass(frozen=True)
class Scored:
    """Both models' reports and answers (as the candidate's label indices) on every gate set."""

    candidate: dict[str, dict[str, Any]]
    current: dict[str, dict[str, Any]]
    decision: Decision


def model_answers(model_dir: Path, sets: dict[str, list[Example]], labels: LabelMap,
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, list[int]]]:
    """A model's report and answers on every set, its answers as indices of `labels` (the candidate's label map)."""
    own = LabelMap.load(model_dir)
    reports, answers = {}, {}
    for name, examples in sets.items():
        reports[name], predicted = score_model_dir(model_dir, examples)
        answers[name] = [labels.names.index(own.name(int(i))) for i in predicted]
    return reports, answers


def truth_of(sets: dict[str, list[Example]], labels: LabelMap) -> dict[str, list[int]]:
    return {name: [labels.index_of_category(ex.category) for ex in examples] for name, examples in sets.items()}


def score_both(sets: dict[str, list[Example]], candidate_dir: Path, current_dir: Path, margins: Margins) -> Scored:
    """Score both models on every set now (the current model's stored numbers are never reused), then decide."""
    labels = LabelMap.load(candidate_dir)
    candidate, candidate_answers = model_answers(candidate_dir, sets, labels)
    current, current_answers = model_answers(current_dir, sets, labels)
    decision = decide(paired_rows(truth_of(sets, labels), candidate_answers, current_answers), margins)
    return Scored(candidate, current, decision)


def comparison_report(candidate: Evaluated, current: Evaluated, decision: Decision, args: argparse.Namespace,
                      now: dt.datetime) -> dict[str, Any]:
    def model(evaluated: Evaluated) -> dict[str, Any]:
        return {"version": evaluated.version, "path": str(evaluated.model_dir),
                "metrics": summary(evaluated.metrics), "per_class": evaluated.metrics["per_class"],
                "confusion_matrix": evaluated.metrics["confusion_matrix"]}

    return {"created_at": now.isoformat(timespec="seconds"), "eval_data": str(args.eval_data),
            "feedback": str(args.feedback), "candidate": model(candidate), "current": model(current),
            "gate": decision.as_dict()}


def without_judge_note(report: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**report, "gate": {**report["gate"], "judge_left_out": reason}} if reason else report


def register(args: argparse.Namespace, candidate: Evaluated, current: Evaluated, registry: ModelRegistry,
             report: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """Move the candidate into the registry, export its ONNX models (what every serving path loads), record that it
    passed the gate against the current model. `make promote` deploys it."""
    target = registry.version_dir(candidate.version)
    if candidate.model_dir.resolve() != target.resolve():
        shutil.move(candidate.model_dir, target)
    export_model_folder(target)
    report = {**report, "registered_to": str(target)}
    write_json_atomically(target / COMPARISON_FILE, report)
    registry.register(Registration(Evaluated(target, candidate.metrics).record(args.eval_data),
                                   current.record(args.eval_data), report["gate"]), now)
    return report


def retrain(args: argparse.Namespace) -> dict[str, Any]:
    """Train, evaluate, gate, register; returns the comparison report (with `registered_to` if registered)."""
    margins = Margins(args.max_macro_f1_drop, args.max_accuracy_drop, args.confidence)
    registry = ModelRegistry(args.registry)
    current_dir = current_model_dir(args.current_model_dir, registry)
    current_version = read_metadata(current_dir)["model_version"]
    read_examples(args.feedback)  # fail before training when there is no feedback to learn from
    read_eval_examples(args.eval_data)  # fail before training when the eval data cannot be read
    candidate_dir = args.candidate_dir or train_candidate(args, current_dir, registry)
    if read_metadata(candidate_dir)["model_version"] == current_version:
        raise ValueError(f"{candidate_dir} is the current model {current_dir}: there is nothing to compare")
    sets, judge_left_out = gate_sets(args, candidate_dir, current_dir)
    scored = score_both(sets, candidate_dir, current_dir, margins)
    candidate = Evaluated(candidate_dir, scored.candidate[TEST_SET])
    current = Evaluated(current_dir, scored.current[TEST_SET])
    decision = scored.decision
    now = dt.datetime.now(dt.UTC)
    report = comparison_report(candidate, current, decision, args, now)
    report = without_judge_note({**report, "gate": {**report["gate"], "summary": decision.summary()}},
                                judge_left_out)
    if decision.promote:
        return register(args, candidate, current, registry, report, now)
    write_json_atomically(candidate.model_dir / COMPARISON_FILE, report)
    return report


def split_train_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Our flags, and train.py's flags after `--`."""
    argv = list(argv)
    return (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    own, train_args = split_train_args(sys.argv[1:] if argv is None else argv)
    margins = Margins()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feedback", type=Path, required=True, help="the TSV written by `make export-feedback`")
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="base data, as train.py --data")
    parser.add_argument("--extra-data", type=Path, nargs="*", default=[],
                        help="more training-only files after the feedback (e.g. the corpus, as `make train`)")
    parser.add_argument("--eval-data", type=Path, help="held-out file both models are scored on "
                                                       "(default: DATA/nlp100/test.tsv)")
    parser.add_argument("--current-model-dir", type=Path,
                        help="the model to beat (default: the registry's current version, else MODEL_DIR)")
    parser.add_argument("--candidate-dir", type=Path,
                        help="gate this trained model folder instead of training one (moved into the registry "
                             "if it passes)")
    parser.add_argument("--registry", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--max-macro-f1-drop", type=float, default=margins.macro_f1,
                        help="gate: the lower confidence bound of the macro-F1 gain must be above minus this "
                             f"(default {margins.macro_f1})")
    parser.add_argument("--max-accuracy-drop", type=float, default=margins.accuracy,
                        help="gate: the lower confidence bound of the accuracy gain must be above minus this "
                             f"(default {margins.accuracy})")
    parser.add_argument("--confidence", type=float, default=margins.confidence,
                        help=f"gate: one-sided confidence of those bounds (default {margins.confidence})")
    args = parser.parse_args(own)
    args.eval_data = args.eval_data or split_file(args.data, "test")
    args.train_args = train_args
    return args


def print_summary(report: dict[str, Any]) -> None:
    for side in ("current", "candidate"):
        model = report[side]
        print(f"{side:9} {model['version']}: accuracy {model['metrics']['accuracy']:.4f}, "
              f"macro-F1 {model['metrics']['macro_f1']:.4f} on {report['eval_data']} (n={model['metrics']['n']})")
    gate = report["gate"]
    rows = ", ".join(f"{name} {count}" for name, count in gate["rows"].items())
    print(f"gate      paired rows: {rows}; only the candidate right on {gate['disagreements']['candidate_only']}, "
          f"only the current model on {gate['disagreements']['current_only']} "
          f"(McNemar exact p {gate['disagreements']['mcnemar_exact_p']:.3f})")
    if "judge_left_out" in gate:
        print(f"gate      story-disjoint judge left out: {gate['judge_left_out']}")
    for check in gate["checks"]:
        print(f"gate      {check['summary']}")
    print(f"gate      rule: {gate['rule']}")
    if report["gate"]["verdict"] == "reject":
        print(f"rejected: nothing registered; the candidate and {COMPARISON_FILE} stay in "
              f"{report['candidate']['path']}")
    else:
        version = report["candidate"]["version"]
        print(f"registered {version} in {report['registered_to']}; promote it with "
              f"`make promote STAGE=local|dev|prod VERSION={version}`")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        report = retrain(args)
    except (DataError, EncoderUnavailableError, FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    except RuntimeError as exc:  # a failed ONNX export: nothing was recorded
        log.error("%s", exc)
        return 1
    print_summary(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
