"""Where one batch-1 request's time goes: the handler's Python steps, then ONNX Runtime's own profile op by op.

    python -m model.tools.profile_call --model-dir artifacts/model --data TEST_FILE [--runtime onnx-int8]

Each step of the SageMaker handler is timed apart on real test headlines, one per request (median per step over
the calls); ONNX Runtime's profiler then times the graph's nodes over the same calls, summed by operator type. A
benchmark, not a test: docs/benchmarks.md shows its tables.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import numpy as np

from devkit.news_files import read_labelled_headlines
from model.runtime import ONNX_FILES, ONNX_INT8, SLOW_FUSIONS, OnnxPredictor, available_cpus, pad_batch
from model.serving.inference import JSON, format_response, input_fn, output_fn
from model.tools.bench import request_body


def step_times(model: OnnxPredictor, titles: Sequence[str]) -> dict[str, list[float]]:
    """Seconds of each handler step per one-headline request, in the order the handler runs them."""
    steps: dict[str, list[float]] = defaultdict(list)

    def step(name: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = call()
        steps[name].append(time.perf_counter() - started)
        return result

    for title in titles:
        body = request_body([title])
        headlines = step("parse JSON request (input_fn)", lambda body=body: input_fn(body, JSON))
        encoded = step("tokenise", lambda headlines=headlines: model.encode(headlines))
        feed = step("pad to arrays", lambda encoded=encoded: pad_batch(encoded, model.pad_id))
        (logits,) = step("session.run", lambda feed=feed: model.session.run(
            None, {"input_ids": feed[0], "attention_mask": feed[1]}))
        probabilities = step("calibrated softmax", lambda logits=logits: model.calibration.probabilities(logits))
        answer = step("labels and scores (format_response)", lambda h=headlines, p=probabilities: format_response(
            h, p, model.labels.names, model.metadata["model_version"]))
        step("JSON answer (output_fn)", lambda answer=answer: output_fn(answer, JSON))
    return steps


def op_times(model_dir: Path, runtime: str, threads: int, titles: Sequence[str]) -> dict[str, float]:
    """Mean microseconds per one-headline call by operator type, from ONNX Runtime's profiler."""
    import onnxruntime as ort

    model = OnnxPredictor(model_dir, runtime, threads)
    with tempfile.TemporaryDirectory(prefix="profile-call-") as scratch:
        options = ort.SessionOptions()  # as OnnxPredictor sets it up, with the profiler on
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(scratch) / "ort")
        session = ort.InferenceSession(str(model_dir / ONNX_FILES[runtime]), options,
                                       providers=["CPUExecutionProvider"], disabled_optimizers=SLOW_FUSIONS)
        feeds = [pad_batch(model.encode([title]), model.pad_id) for title in titles]
        for ids, mask in feeds:
            session.run(None, {"input_ids": ids, "attention_mask": mask})
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    return {op: total / len(feeds) for op, total in by_op.items()}


def markdown(steps: dict[str, list[float]], ops: dict[str, float]) -> str:
    medians = {name: float(np.median(seconds)) * 1e6 for name, seconds in steps.items()}
    total = sum(medians.values())
    lines = ["| handler step (one headline) | median µs | share |", "|---|---|---|"]
    lines += [f"| {name} | {us:.0f} | {us / total:.0%} |" for name, us in medians.items()]
    lines += [f"| **sum of the steps** | **{total:.0f}** | |", "",
              "| ONNX Runtime operator (profiler, summed per call) | mean µs per call | share of the ops |",
              "|---|---|---|"]
    op_total = sum(ops.values())
    lines += [f"| {op} | {us:.0f} | {us / op_total:.0%} |" for op, us in sorted(ops.items(), key=lambda kv: -kv[1])]
    lines.append(f"| **all operators** | **{op_total:.0f}** | |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the NLP-100 test split (test.tsv)")
    parser.add_argument("--runtime", default=ONNX_INT8, choices=(ONNX_INT8, "onnx"))
    parser.add_argument("--threads", type=int, default=available_cpus())
    parser.add_argument("--calls", type=int, default=500, help="one-headline requests timed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    titles, _ = read_labelled_headlines(args.data)
    titles = list(islice(cycle(titles), args.calls))
    model = OnnxPredictor(args.model_dir, args.runtime, args.threads)
    step_times(model, titles[:20])  # warm-up
    steps = step_times(model, titles)
    ops = op_times(args.model_dir, args.runtime, args.threads, titles)
    print(markdown(steps, ops))


if __name__ == "__main__":
    main()
