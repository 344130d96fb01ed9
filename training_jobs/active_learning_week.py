"""`make active-learning-week`: a simulated week of the loop on the local stack, measured on the judge.

    python -m training_jobs.active_learning_week [--model-dir artifacts/model] [--budgets 100 200 400] [--seeds 0 1]
        [--output artifacts/active-learning] [--run-dir DIR (resume)]

1. Traffic: the pool (training_jobs.traffic_pool: labelled headlines the model never trained on, no judge row) goes
   through `POST /classify` of a local stack of its own (`python -m local_stack.orchestrator`, free ports).
2. Labels: the oracle (training_jobs.oracle) labels the review queue (`GET /review`, page by page) up to the largest
   budget, and each seed's random draw of the week's transactions, with the pool's true labels, through the API.
3. `make export-feedback`'s export of the stack's table, while it runs; then the stack stops.
4. Per arm, budget and seed: that arm's first k exported titles -> a warm-started candidate (training_jobs.warm_start,
   the same fine-tune and replay sample for every arm, the control `none` included) -> the gate against the current
   model on NLP-100 test + the judge (training_jobs.gate; the current model's answers scored once) -> its judge score.
5. The review queue's largest-budget candidate of the first seed, if the gate passes it, is registered in the run's
   registry (`make retrain`'s code); `make promote` would give it a canary share.
6. summary.json, summary.md and learning_curve.png in the run's folder (training_jobs.learning_curve).

The stack runs with UNCERTAIN_BELOW high enough that the review queue holds the largest budget (`--uncertain-below`):
the queue is ordered by margin, so the first k are the same at any threshold that flags at least k. Each finished
candidate is kept, so a run resumed with `--run-dir` trains only what is missing.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devkit.local_stack_state import wait_for_state
from model.artifact import read_metadata
from model.labels import LabelMap
from training_jobs import feedback_export, learning_curve, oracle, retrain
from training_jobs.config import REPO_ROOT, default_data_dir, default_model_dir, split_file
from training_jobs.data import DataError, Example, normalise_title, read_examples
from training_jobs.evaluate import STORY_DISJOINT
from training_jobs.gate import Margins, decide, paired_rows
from training_jobs.registry import write_json_atomically
from training_jobs.traffic_pool import KINDS, SEEN_STORY, build_pool
from training_jobs.warm_start import FineTune, warm_start

log = logging.getLogger("training_jobs.active_learning_week")
DEFAULT_OUTPUT = REPO_ROOT / "artifacts" / "active-learning"
STACK_MODULE = "local_stack.orchestrator"
STACK_TIMEOUT_S = 240.0
TRAFFIC_FILE, FEEDBACK_FILE, CHOICES_FILE = "traffic.json", "feedback.tsv", "choices.json"


@contextmanager
def local_stack(model_dir: Path, state_dir: Path, uncertain_below: float) -> Iterator[oracle.Api]:
    """A local stack of the run's own on free ports, serving `model_dir`; stopped with Ctrl-C (SIGINT) at the end."""
    state_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", STACK_MODULE, "--model-dir", str(model_dir), "--state-dir", str(state_dir),
               "--api-port", "0", "--endpoint-port", "0", "--dynamodb-port", "0"]
    environment = {**os.environ, "UNCERTAIN_BELOW": str(uncertain_below)}
    with open(state_dir / "stack.out", "wb") as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, env=environment)
    try:
        state = wait_for_state(state_dir, process, STACK_TIMEOUT_S)
        if state is None:
            raise RuntimeError(f"the local stack did not come up; see {state_dir / 'stack.out'}")
        yield oracle.Api(state["api_url"])
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:  # SIGINT ignored (a parent started us so): stop it outright
                process.terminate()
                process.wait(30)


def label_the_week(args: argparse.Namespace, run_dir: Path, labels: LabelMap) -> dict[str, Any]:
    """Steps 1-3: traffic, the oracle's labels, the export. Returns what each arm chose, in order (titles)."""
    rows, pool = build_pool(args.model_dir, args.data, seed=0, kinds=set(args.pool))
    if len(rows) < max(args.budgets):
        raise DataError(f"{args.model_dir}: {len(rows)} headlines of {args.data} ({', '.join(args.pool)}) are left "
                        f"that it neither trained on nor is scored on, fewer than the largest budget "
                        f"({max(args.budgets)}); see training_jobs/traffic_pool.py")
    by_title = {normalise_title(row.example.title): row for row in rows}
    budget = max(args.budgets)
    with local_stack(args.model_dir, run_dir / "local", args.uncertain_below) as api:
        started = time.monotonic()
        sent = oracle.send_traffic(api, rows)
        traffic_s = time.monotonic() - started
        log.info("traffic: %d headlines in %.0f s", len(sent), traffic_s)
        if args.queue == "api":
            choices = {learning_curve.REVIEW: oracle.review_arm(api, by_title, labels, budget)}
        else:
            ranked = oracle.margin_order(sent, args.uncertain_below)[:budget]
            oracle.label_transactions(api, ranked, labels)
            choices = {learning_curve.REVIEW: [item.row.example.title for item in ranked]}
        for seed in args.seeds:
            drawn = oracle.random_order(sent, seed)[:budget]
            oracle.label_transactions(api, drawn, labels)
            choices[f"{learning_curve.RANDOM}-{seed}"] = [item.row.example.title for item in drawn]
        log.info("labelled: review queue %d, random %s", len(choices[learning_curve.REVIEW]),
                 [len(v) for k, v in choices.items() if k != learning_curve.REVIEW])
        exported = feedback_export.main(["--stage", "local", "--days", "1", "--data", str(args.data),
                                         "--local-state-dir", str(run_dir / "local"), "--max-labels-per-key",
                                         str(len(sent)), "--output", str(run_dir / FEEDBACK_FILE)])
        if exported != 0:
            raise RuntimeError(f"exporting the week's feedback failed (exit {exported}): see the log above")
    uncertain = sum(item.scores[item.label] < args.uncertain_below for item in sent)
    week = {"pool": pool, "traffic": {"requests": len(sent), "seconds": round(traffic_s, 1),
                                      "uncertain_below": args.uncertain_below, "uncertain": uncertain},
            "queue": args.queue, "choices": choices}
    write_json_atomically(run_dir / CHOICES_FILE, week)
    return week


def arm_labels(feedback: Path, titles: Sequence[str], target: Path) -> Path:
    """The exported rows of these titles: one arm's labels at one budget."""
    wanted = {normalise_title(title) for title in titles}
    rows = [ex for ex in read_examples(feedback) if normalise_title(ex.title) in wanted]
    if len(rows) != len(wanted):
        raise DataError(f"{feedback}: {len(rows)} of the {len(wanted)} labelled titles were exported")
    with open(target, "w", newline="") as sink:
        writer = csv.writer(sink, delimiter="\t", lineterminator="\n")
        writer.writerow(["category", "title"])
        writer.writerows((ex.category, ex.title) for ex in rows)
    return target


def plan(budgets: Sequence[int], seeds: Sequence[int]) -> list[tuple[str, int, int]]:
    """(arm, labels, seed) of every candidate: the control once per seed, each arm at each budget and seed."""
    return [(learning_curve.NONE, 0, seed) for seed in seeds] + [
        (arm, budget, seed) for arm in (learning_curve.REVIEW, learning_curve.RANDOM)
        for budget in sorted(budgets) for seed in seeds]


def titles_of(week: dict[str, Any], arm: str, labels: int, seed: int) -> list[str]:
    if arm == learning_curve.NONE:
        return []
    key = arm if arm == learning_curve.REVIEW else f"{arm}-{seed}"
    return week["choices"][key][:labels]


def judged_sets(args: argparse.Namespace) -> dict[str, list[Example]]:
    """The rows every candidate is gated and judged on; a DataError, before any traffic, when the model has no
    story-disjoint judge to measure the week on."""
    sets, note = retrain.gate_sets(argparse.Namespace(eval_data=split_file(args.data, "test"), data=args.data),
                                   args.model_dir, args.model_dir)
    if STORY_DISJOINT not in sets:
        raise DataError(f"{args.model_dir} has no story-disjoint judge to measure the week on ({note}); "
                        "train the current model with `make train` (today's recipe carves one out)")
    return sets


def measure(args: argparse.Namespace, run_dir: Path, week: dict[str, Any],
            sets: dict[str, list[Example]]) -> list[learning_curve.Run]:
    """Step 4: every candidate of the plan, warm-started and gated (finished ones are read back)."""
    labels = LabelMap.load(args.model_dir)
    truth = retrain.truth_of(sets, labels)
    current = retrain.model_answers(args.model_dir, sets, labels)[1]
    runs = []
    for arm, count, seed in plan(args.budgets, args.seeds):
        name = f"{arm}-{count}-seed{seed}"
        folder, gate_file = run_dir / "candidates" / name, run_dir / "candidates" / f"{name}.gate.json"
        if not gate_file.exists():
            titles = titles_of(week, arm, count, seed)
            label_file = arm_labels(run_dir / FEEDBACK_FILE, titles, run_dir / "labels" / f"{name}.tsv") \
                if titles else None
            warm_start(args.model_dir, folder, args.data, label_file, FineTune(replay=args.replay, seed=seed))
            reports, answers = retrain.model_answers(folder, sets, labels)
            decision = decide(paired_rows(truth, answers, current), Margins())
            write_json_atomically(gate_file, {"gate": decision.as_dict(), "judge": reports[STORY_DISJOINT]["accuracy"],
                                              "judge_macro_f1": reports[STORY_DISJOINT]["macro_f1"],
                                              "test": reports["test"]["accuracy"]})
        gate = json.loads(gate_file.read_text())
        accuracy = next(check for check in gate["gate"]["checks"] if check["metric"] == "accuracy")
        runs.append(learning_curve.Run(arm, count, seed, gate["judge"], gate["judge_macro_f1"], gate["test"],
                                       gate["gate"]["verdict"], accuracy["lower"],
                                       read_metadata(folder)["train_seconds"]))
        log.info("%s: judge %.4f, test %.4f, gate %s", name, gate["judge"], gate["test"], gate["gate"]["verdict"])
    return runs


def register_best(args: argparse.Namespace, run_dir: Path, runs: Sequence[learning_curve.Run]) -> dict[str, Any]:
    """Step 5: `make retrain --candidate-dir` on the review queue's largest-budget candidate of the first seed."""
    budget, seed = max(args.budgets), args.seeds[0]
    run = next(r for r in runs if (r.arm, r.labels, r.seed) == (learning_curve.REVIEW, budget, seed))
    name = f"{learning_curve.REVIEW}-{budget}-seed{seed}"
    if run.verdict != "promote":
        return {"candidate": name, "registered": False, "why": "the gate rejected it"}
    candidate = run_dir / "candidates" / name
    if not candidate.exists():  # registered by an earlier pass of this run
        return {"candidate": name, "registered": True, "registry": str(run_dir / "models")}
    report = retrain.retrain(retrain.parse_args([
        "--feedback", str(run_dir / "labels" / f"{name}.tsv"), "--data", str(args.data),
        "--current-model-dir", str(args.model_dir), "--candidate-dir", str(candidate),
        "--registry", str(run_dir / "models")]))
    return {"candidate": name, "registered": report["gate"]["verdict"] == "promote",
            "registry": str(run_dir / "models"), "registered_to": report.get("registered_to")}


def week(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = args.run_dir or args.output / dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "labels").mkdir(exist_ok=True)
    labels = LabelMap.load(args.model_dir)
    started = time.monotonic()
    choices_file = run_dir / CHOICES_FILE
    sets = judged_sets(args)
    labelled = json.loads(choices_file.read_text()) if choices_file.exists() else label_the_week(args, run_dir, labels)
    runs = measure(args, run_dir, labelled, sets)
    registration = register_best(args, run_dir, runs)
    context = {"model": read_metadata(args.model_dir)["model_version"], "model_dir": str(args.model_dir),
               "budgets": sorted(args.budgets), "seeds": list(args.seeds), "replay": args.replay,
               "fine_tune": {k: v for k, v in vars(FineTune(replay=args.replay)).items() if k != "seed"},
               "pool": labelled["pool"], "traffic": labelled["traffic"],
               "queue": labelled["queue"], "review_queue_labelled": len(labelled["choices"][learning_curve.REVIEW]),
               "registration": registration, "seconds": round(time.monotonic() - started, 1)}
    result = learning_curve.summary(runs, context)
    write_json_atomically(run_dir / "summary.json", result)
    (run_dir / "summary.md").write_text(learning_curve.markdown(result))
    learning_curve.plot(runs, run_dir / "learning_curve.png", f"a simulated week on {context['model']}")
    print(learning_curve.markdown(result))
    print(f"report: {run_dir}/summary.md, summary.json, learning_curve.png")
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=default_model_dir(), help="the current model")
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="the data it was trained on")
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 200, 400], help="labels given (k)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--replay", type=int, default=FineTune.replay,
                        help="old training rows each candidate replays with its labels")
    parser.add_argument("--uncertain-below", type=float, default=0.9,
                        help="the stack's UNCERTAIN_BELOW: high enough that the queue holds the largest budget")
    parser.add_argument("--pool", nargs="+", choices=KINDS, default=list(KINDS),
                        help=f"the kinds of pool rows sent as traffic (training_jobs.traffic_pool); {SEEN_STORY} "
                             "alone: no label can teach a story the judge asks about")
    parser.add_argument("--queue", choices=("api", "answers"), default="api",
                        help="the review arm's queue: GET /review, or the answers ranked by its rule (training_jobs."
                             "oracle) where the API has no review queue")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="a run's folder is made in here")
    parser.add_argument("--run-dir", type=Path, help="resume this run (its labels are kept, missing runs trained)")
    args = parser.parse_args(argv)
    if min(args.budgets) < 1:
        parser.error("--budgets must be positive numbers of labels")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        week(args)
    except (DataError, FileNotFoundError, oracle.OracleError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
