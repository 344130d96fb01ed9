"""`make bench`: inference speed, memory and size per runtime, side by side, on real NLP-100 test headlines.

    python -m model.tools.bench --model-dir artifacts/model --data TEST_FILE --output artifacts/bench.json

Each runtime in a fresh process with fixed threads, and the host's int8 GEMM speed before and after, so results
can be read against the machine. A benchmark, not a test (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import cycle, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from devkit.news_files import read_labelled_headlines
from devkit.repo import REPO_ROOT
from model.artifact import read_metadata
from model.runtime import (
    ONNX,
    ONNX_CHUNK,
    ONNX_FILES,
    ONNX_INT8,
    TORCH,
    OnnxPredictor,
    Predictor,
    available_cpus,
    fast_tokenizer,
    load_predictor,
)
from model.serving.inference import JSON, input_fn, output_fn, predict_fn
from model.tools.bench_models import DISTILBERT, SEED_PADDING, SeedStyleModel, distilbert_base_random
from model.tools.gemm_limit import GemmOnlyModel, call_rows, encoder_shape, gemm_seconds, interleaved_share

if TYPE_CHECKING:
    from rich.table import Table

SEED_STYLE = "seed-style"
VARIANTS = (SEED_STYLE, TORCH, ONNX, ONNX_INT8)
THROUGHPUT_BATCH = 32
# Alternating rounds of a runtime and its own-shape limit (model.tools.gemm_limit): rounds and calls per block, for
# calls of a few headlines and of 32.
SHARE_ROUNDS = {"small": (10, 40), "large": (6, 5)}
SHARE_CASES = ("1x16", "32x16", "p50 @1", "@32")
MODEL_FILES = {SEED_STYLE: "model.safetensors", TORCH: "model.safetensors", **ONNX_FILES}
# "news" is one word piece, so this is [CLS] + 14 + [SEP] = 16 tokens: a fixed shape that compares machines.
SIXTEEN_TOKENS = " ".join(["news"] * 14)
# The file-to-file target: headlines/s through classify_file within 15% of the int8 model's own batch-32 throughput.
FILE_TO_FILE_SHARE = 0.85
PROC = Path("/proc")  # Linux only


@dataclass(frozen=True)
class Target:
    name: str
    model: str
    variant: str
    metric: str
    limit: float
    at_most: bool = True


TARGETS = (
    Target("DistilBERT int8 p50 at batch 1 (ms)", DISTILBERT, ONNX_INT8, "p50_ms", 3.0),
    Target("DistilBERT int8 throughput at batch 32 (headlines/s)", DISTILBERT, ONNX_INT8, "headlines_per_s", 600,
           at_most=False),
    Target("embedded int8 p50 at batch 1 (ms)", "embedded", ONNX_INT8, "p50_ms", 1.0),
    Target("DistilBERT int8 vs seed-style at batch 1 (x faster)", DISTILBERT, ONNX_INT8, "speedup_vs_seed", 8,
           at_most=False),
    Target("embedded int8 vs seed-style at batch 1 (x faster)", "embedded", ONNX_INT8, "speedup_vs_seed", 8,
           at_most=False),
    Target("DistilBERT int8 share of its own-shape limit, one median headline", DISTILBERT, ONNX_INT8,
           "own_limit_share_at_1", 0.70, at_most=False),
    Target("embedded int8 share of its own-shape limit, one median headline", "embedded", ONNX_INT8,
           "own_limit_share_at_1", 0.50, at_most=False),
    Target("DistilBERT int8 cold start (s)", DISTILBERT, ONNX_INT8, "cold_start_s", 0.5),
    Target("DistilBERT int8 peak RSS (MB)", DISTILBERT, ONNX_INT8, "peak_rss_mb", 300),
    Target("DistilBERT int8 model file (MB)", DISTILBERT, ONNX_INT8, "model_file_mb", 70),
    Target("embedded int8 accuracy drop vs torch fp32, requests of 32 (points)", "embedded", ONNX_INT8,
           "accuracy_drop_points", 0.5),
    Target("embedded int8 accuracy drop vs torch fp32, one headline per call (points)", "embedded", ONNX_INT8,
           "accuracy_drop_at_1_points", 0.5),
)


# --- data ---------------------------------------------------------------------------------------------------------

def request_body(headlines: Sequence[str]) -> bytes:
    return json.dumps({"inputs": list(headlines)}).encode()


# --- the four ways to answer a request ----------------------------------------------------------------------------

def load_variant(variant: str, model_dir: Path, threads: int) -> Predictor:
    return SeedStyleModel(model_dir, threads) if variant == SEED_STYLE else load_predictor(model_dir, variant, threads)


def handle(model: Predictor, body: bytes) -> str:
    """One request through the SageMaker handler functions, as the container runs them."""
    return output_fn(predict_fn(input_fn(body, JSON), model), JSON)


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def peak_rss_mb(pid: int) -> float:
    """High-water resident set of a process in MiB: Linux's VmHWM.

    Without /proc (macOS) no process's peak is readable from outside, so it is psutil's resident set now, read after
    the measured work: a lower bound of the peak.
    """
    status = PROC / str(pid) / "status"
    if not status.is_file():
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")



# --- one variant in a fresh process -------------------------------------------------------------------------------

def fixed_shape_ms(model: Predictor) -> dict[str, float]:
    """Model time alone (no JSON) for 1 and 32 headlines of exactly 16 tokens, median of repeated calls."""
    return {f"fixed_{n}x16_ms": float(np.median([timed(lambda n=n: model.predict_proba([SIXTEEN_TOKENS] * n))[0]
                                                 for _ in range(repeats)]) * 1000)
            for n, repeats in ((1, 50), (32, 10))}


def stage_ms(model: OnnxPredictor, titles: Sequence[str]) -> dict[str, float]:
    """Tokenisation and the model run timed apart (no JSON): medians over 1- and 32-headline calls."""
    stages = {}
    for size, calls in ((1, 200), (THROUGHPUT_BATCH, 20)):
        tokenise, run = [], []
        for request in (titles[start:start + size] for start in range(0, size * calls, size)):
            seconds, encoded = timed(lambda request=request: model.encode(request))
            tokenise.append(seconds)
            run.append(timed(lambda encoded=encoded: model.predict_encoded(encoded))[0])
        stages[f"tokenise_{size}_ms"] = float(np.median(tokenise) * 1000)
        stages[f"model_{size}_ms"] = float(np.median(run) * 1000)
    return stages


def run_worker(args: argparse.Namespace) -> None:
    """Answer one request, say so (the parent times the cold start), then measure and print one JSON line."""
    model = load_variant(args.worker, args.model_dir, args.threads)
    handle(model, request_body([args.first_headline]))
    print("ready", flush=True)
    titles, categories = read_labelled_headlines(args.data)
    for title in titles[:3]:
        handle(model, request_body([title]))
    latencies = [timed(lambda t=title: handle(model, request_body([t])))[0]
                 for title in islice(cycle(titles), args.latency_requests)]
    batches = [titles[i:i + THROUGHPUT_BATCH] for i in range(0, len(titles), THROUGHPUT_BATCH)]
    batches = batches[:args.throughput_batches] if args.throughput_batches else batches
    answers = [timed(lambda b=batch: handle(model, request_body(b))) for batch in batches]
    predicted = [p["label"] for _, answer in answers for p in json.loads(answer)["predictions"]]
    # Read before the limit's graphs exist: they are not the runtime's memory. Not ru_maxrss: Linux keeps the
    # forking parent's across exec.
    rss = peak_rss_mb(os.getpid())
    names_to_categories = dict(zip(model.labels.names, model.labels.categories, strict=True))
    correct = [names_to_categories[label] == truth
               for label, truth in zip(predicted, categories[:len(predicted)], strict=True)]
    print(json.dumps({
        **(accuracy_one_at_a_time(model, titles, categories) if isinstance(model, OnnxPredictor) else {}),
        "p50_ms": float(np.percentile(latencies, 50) * 1000), "p95_ms": float(np.percentile(latencies, 95) * 1000),
        "latency_requests": len(latencies),
        "headlines_per_s": len(predicted) / sum(seconds for seconds, _ in answers),
        "throughput_headlines": len(predicted),
        "accuracy": float(np.mean(correct)) if not args.throughput_batches else None,
        **({} if args.worker == SEED_STYLE else fixed_shape_ms(model)),
        **(stage_ms(model, titles) if isinstance(model, OnnxPredictor) else {}),
        "peak_rss_mb": rss,
        **({} if args.worker == SEED_STYLE else {"own_shape_limit": own_shape_shares(model, args, titles)}),
    }), flush=True)


def accuracy_one_at_a_time(model: OnnxPredictor, titles: Sequence[str],
                           categories: Sequence[str]) -> dict[str, float]:
    """Accuracy with one headline per call, as every API request runs: int8 quantises activations per call, so it
    differs from a batch's (docs/benchmarks.md)."""
    names = model.labels.categories
    predicted = [names[int(np.argmax(model.predict_proba([title])[0]))] for title in titles]
    return {"accuracy_at_1": float(np.mean([p == truth for p, truth in zip(predicted, categories, strict=True)]))}


def measure_variant(variant: str, model_dir: Path, args: argparse.Namespace, first_headline: str) -> dict[str, Any]:
    seed = variant == SEED_STYLE
    command = [sys.executable, "-m", "model.tools.bench", "--worker", variant, "--model-dir", str(model_dir),
               "--data", str(args.data), "--threads", str(args.threads), "--first-headline", first_headline,
               "--latency-requests", str(args.seed_requests if seed else args.latency_requests),
               "--throughput-batches", str(args.seed_batches if seed else 0)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{variant} worker for {model_dir} failed; see its error output above")
    cold_start = time.perf_counter() - started
    result = json.loads(process.stdout.readline())
    if process.wait() != 0:
        raise RuntimeError(f"{variant} worker for {model_dir} exited with {process.returncode}")
    return {**result, "cold_start_s": cold_start,
            "model_file_mb": (model_dir / MODEL_FILES[variant]).stat().st_size / 1e6}


def measure_model(model_dir: Path, args: argparse.Namespace, first_headline: str) -> dict[str, dict[str, Any]]:
    results = {}
    for variant in VARIANTS:
        print(f"  {variant} ...", file=sys.stderr, flush=True)
        results[variant] = measure_variant(variant, model_dir, args, first_headline)
    seed_p50, torch_accuracy = results[SEED_STYLE]["p50_ms"], results[TORCH]["accuracy"]
    for result in results.values():
        result["speedup_vs_seed"] = seed_p50 / result["p50_ms"]
        if "own_shape_limit" in result:
            result["own_limit_share_at_1"] = result["own_shape_limit"]["p50 @1"]["share"]
        if result["accuracy"] is not None:
            result["accuracy_drop_points"] = (torch_accuracy - result["accuracy"]) * 100
        if "accuracy_at_1" in result:
            result["accuracy_drop_at_1_points"] = (torch_accuracy - result["accuracy_at_1"]) * 100
    return results


# --- the share of each model's own GEMM limit ---------------------------------------------------------------------

@dataclass(frozen=True)
class ShareCase:
    """One way of calling a runtime, for its share of the limit: `call` returns the token rows of GEMM work it did;
    `rows` and `headlines` are the token rows and headlines of one of its model calls, at which the limit runs."""

    call: Callable[[], float]
    rows: int
    headlines: int
    size: str  # "small" or "large": SHARE_ROUNDS


def share_cases(model: Predictor, variant: str, titles: Sequence[str],
                lengths: Sequence[int]) -> dict[str, ShareCase]:
    """The fixed 1x16 and 32x16 shapes (model alone), one headline of the split's median length and the split's
    32-headline requests (both through the handler), each with the rows its model calls have."""
    chunk = ONNX_CHUNK if variant != TORCH else THROUGHPUT_BATCH
    median = round(float(np.median(lengths)))
    typical = cycle([title for title, length in zip(titles, lengths, strict=True) if length == median])
    requests = [(titles[i:i + THROUGHPUT_BATCH], sum(call_rows(lengths[i:i + THROUGHPUT_BATCH], THROUGHPUT_BATCH,
                                                                chunk)))
                for i in range(0, len(titles), THROUGHPUT_BATCH)]
    next_request = cycle(requests)

    def fixed(count: int) -> Callable[[], float]:
        def call() -> float:
            model.predict_proba([SIXTEEN_TOKENS] * count)
            return 16.0 * count

        return call

    def one_typical() -> float:
        handle(model, request_body([next(typical)]))
        return float(median)

    def one_request() -> float:
        batch, rows = next(next_request)
        handle(model, request_body(batch))
        return float(rows)

    calls = call_rows(lengths, THROUGHPUT_BATCH, chunk)
    per_call = min(THROUGHPUT_BATCH, chunk)
    return {"1x16": ShareCase(fixed(1), 16, 1, "small"),
            "32x16": ShareCase(fixed(THROUGHPUT_BATCH), per_call * 16, per_call, "large"),
            "p50 @1": ShareCase(one_typical, median, 1, "small"),
            "@32": ShareCase(one_request, round(float(np.mean(calls))), round(len(titles) / len(calls)), "large")}


def own_shape_shares(model: Predictor, args: argparse.Namespace, titles: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each case's share of the limit of the runtime's own precision (int8 or fp32) at the model's shapes, timed in
    alternating rounds with it in this process (model.tools.gemm_limit). The limit does the GEMM work the runtime
    does: for ONNX graphs that compute the last layer for the first token only, so does the limit."""
    shape = encoder_shape(args.model_dir)
    first_token_only = args.worker != TORCH and bool(
        read_metadata(args.model_dir).get("onnx", {}).get("last_layer_first_token_only"))
    measured = {}
    for case, spec in share_cases(model, args.worker, titles, token_lengths(args.model_dir, titles)).items():
        limit = GemmOnlyModel(shape, spec.rows, args.threads, int8=args.worker == ONNX_INT8,
                              last_layer_rows=spec.headlines if first_token_only else None)
        rounds, block = SHARE_ROUNDS[spec.size]
        result = interleaved_share(spec.call, limit, rounds, block)
        measured[case] = {"rows": spec.rows, **asdict(result)}
    return measured


def token_lengths(model_dir: Path, titles: Sequence[str]) -> list[int]:
    """Tokens per headline as every runtime of the folder cuts them (its tokenizer, truncated at max_length)."""
    tokenizer = fast_tokenizer(model_dir, int(read_metadata(model_dir)["max_length"]))
    return [len(encoding.ids) for encoding in tokenizer.encode_batch(list(titles))]


def limit_summary(model_dir: Path, titles: Sequence[str]) -> dict[str, Any]:
    """The model's shape and the split's median token count: what its limits were measured at."""
    shape = encoder_shape(model_dir)
    return {"shape": {"hidden": shape.hidden, "intermediate": shape.intermediate, "layers": shape.layers},
            "median_tokens": float(np.median(token_lengths(model_dir, titles)))}


# --- end to end over HTTP -----------------------------------------------------------------------------------------

def measure_endpoint(model_dir: Path, args: argparse.Namespace, titles: Sequence[str]) -> dict[str, Any]:
    """boto3 -> local endpoint (int8): sequential one-headline requests, then 16 concurrent clients."""
    import boto3
    from botocore.config import Config

    from model.tools.local_endpoint import running_server, serve_command

    command = serve_command(model_dir, "127.0.0.1", 0, args=["--runtime", ONNX_INT8, "--threads", str(args.threads)])
    started = time.perf_counter()
    with running_server(command) as server:
        client = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench",
                              config=Config(max_pool_connections=32))

        def invoke(headlines: Sequence[str]) -> int:
            """One request; the size of its answer in bytes (what the endpoint bills as data out)."""
            return len(client.invoke_endpoint(EndpointName="news-classifier", ContentType=JSON,
                                              Body=request_body(headlines))["Body"].read())

        invoke(titles[:1])
        cold_start = time.perf_counter() - started
        for title in titles[:3]:
            invoke([title])
        answers = [timed(lambda t=title: invoke([t])) for title in islice(cycle(titles), args.latency_requests)]
        latencies = [seconds for seconds, _ in answers]
        with ThreadPoolExecutor(16) as pool:
            concurrent_s, _ = timed(lambda: list(pool.map(lambda t: invoke([t]), titles)))
        rss = peak_rss_mb(server.process.pid)
    return {"cold_start_s": cold_start, "p50_ms": float(np.percentile(latencies, 50) * 1000),
            "p95_ms": float(np.percentile(latencies, 95) * 1000), "latency_requests": len(latencies),
            "concurrent_clients": 16, "concurrent_headlines_per_s": len(titles) / concurrent_s,
            "server_peak_rss_mb": rss, "mean_response_bytes": float(np.mean([size for _, size in answers]))}


# --- file to file -------------------------------------------------------------------------------------------------

def measure_file_to_file(model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """`make classify-file` on the test split in a fresh process: int8, the same fixed thread count as the rows above.

    Its own timing runs from the first row read to the output renamed; the process time adds start-up and model load.
    """
    with tempfile.TemporaryDirectory(prefix="bench-classify-file-") as scratch:
        command = [sys.executable, "-m", "training_jobs.classify_file", "--model-dir", str(model_dir), "--input",
                   str(args.data), "--output", str(Path(scratch) / "labelled.tsv"), "--runtime", ONNX_INT8,
                   "--threads", str(args.threads), "--json", "--no-progress"]
        process_s, result = timed(lambda: subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT))
    if result.returncode != 0:
        raise RuntimeError(f"classify_file on {model_dir} failed:\n{result.stderr[-3000:]}")
    summary = json.loads(result.stdout.splitlines()[-1])
    return {"headlines_per_s": summary["headlines_per_s"], "headlines": summary["labelled"],
            "pipeline_s": summary["seconds"], "process_s": process_s,
            "accuracy": summary["metrics"]["accuracy"] if summary["metrics"] else None}


def file_to_file_checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model: file-to-file headlines/s as a share of the same run's int8 batch-32 throughput."""
    checks = []
    for model, result in report["file_to_file"].items():
        share = result["headlines_per_s"] / report["models"][model][ONNX_INT8]["headlines_per_s"]
        result["share_of_batch_32"] = share
        checks.append({"target": f"{model} int8 file to file vs batch 32 (share)",
                       "limit": f">= {FILE_TO_FILE_SHARE:g}", "measured": share, "met": share >= FILE_TO_FILE_SHARE})
    return checks


def int8_gemm_gmacs(threads: int, rows: int = 512, depth: int = 768, columns: int = 3072) -> float:
    """This machine's int8 matrix speed right now: the kernel under the int8 models, alone (GMAC/s, median).

    One ONNX Runtime DynamicQuantizeMatMul of DistilBERT's feed-forward shape, as the quantised models run it:
    no int8 model does more multiply-adds per second, so read their rows against it when comparing machines,
    or runs of a shared host whose speed drifts.
    """
    return rows * depth * columns / gemm_seconds(threads, rows, depth, columns, int8=True) / 1e9


# --- report -------------------------------------------------------------------------------------------------------

def check_targets(models: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    checks = []
    for target in TARGETS:
        measured = models[target.model][target.variant][target.metric]
        met = measured <= target.limit if target.at_most else measured >= target.limit
        checks.append({"target": target.name, "limit": ("<= " if target.at_most else ">= ") + f"{target.limit:g}",
                       "measured": measured, "met": met})
    return checks


def stage_table(models: dict[str, dict[str, dict[str, Any]]]) -> Table:
    """Where the time of the ONNX runtimes goes: tokenisation apart from the model run (medians, ms)."""
    from rich.table import Table

    table = Table(title="tokenisation vs model run (ms, no JSON)")
    for column in ("model", "runtime", "tokenise @1", "model @1", "tokenise @32", "model @32"):
        table.add_column(column, justify="left" if column in {"model", "runtime"} else "right")
    for model, variants in models.items():
        for variant, r in variants.items():
            if "tokenise_1_ms" in r:
                table.add_row(model, variant, f"{r['tokenise_1_ms']:.3f}", f"{r['model_1_ms']:.2f}",
                              f"{r['tokenise_32_ms']:.2f}", f"{r['model_32_ms']:.1f}")
    return table


def share_table(report: dict[str, Any]) -> Table:
    """Per model and runtime: the share of the model's own-shape GEMM limit each case reaches (median of the
    alternating rounds, quartiles in brackets)."""
    from rich.table import Table

    table = Table(title="share of the model's own-shape GEMM limit, timed in alternating rounds "
                        "(int8 runtimes: int8 limit; fp32: fp32 limit; median, quartiles)")
    for column in ("model", "runtime", *SHARE_CASES):
        table.add_column(column, justify="left" if column in {"model", "runtime"} else "right")
    for model, variants in report["models"].items():
        for variant, r in variants.items():
            if "own_shape_limit" in r:
                table.add_row(model, variant, *(_share_cell(r["own_shape_limit"][case]) for case in SHARE_CASES))
    return table


def _limit_cell(case: dict[str, Any]) -> str:
    return f"{case['limit_gmacs']:.0f} @ {case['rows']} rows"


def _share_cell(case: dict[str, Any]) -> str:
    return f"{case['share']:.0%} ({case['share_q1']:.0%}-{case['share_q3']:.0%})"


def limit_table(report: dict[str, Any]) -> Table:
    """The own-shape limits measured beside each runtime: GMAC/s of the model's GEMMs alone, per case."""
    from rich.table import Table

    table = Table(title="own-shape GEMM limits (every layer's six GEMMs chained, nothing else; GMAC/s, median)")
    for column in ("model", "hidden / intermediate", "median tokens", "runtime", *SHARE_CASES):
        table.add_column(column, justify="left" if column in {"model", "runtime"} else "right")
    for model, variants in report["models"].items():
        limits = report["limits"][model]
        for variant, r in variants.items():
            if "own_shape_limit" in r:
                table.add_row(model, f"{limits['shape']['hidden']} / {limits['shape']['intermediate']}",
                              f"{limits['median_tokens']:.0f}", variant,
                              *(_limit_cell(r["own_shape_limit"][case]) for case in SHARE_CASES))
    return table


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    machine = report["machine"]
    table = Table(title=f"inference per runtime · {machine['model_threads']} model threads · "
                        f"{machine['cpus_available']} CPUs available · {report['data']['headlines']} test headlines")
    for column in ("model", "runtime", "p50 ms", "p95 ms", "x seed", "headlines/s @32", "accuracy @32 | @1",
                   "cold start s", "peak RSS MB", "model file MB", "1x16 | 32x16 ms"):
        table.add_column(column, justify="left" if column in {"model", "runtime"} else "right")
    for model, variants in report["models"].items():
        for variant, r in variants.items():
            accuracy = "-" if r["accuracy"] is None or model == DISTILBERT else (
                f"{r['accuracy']:.4f}" + (f" | {r['accuracy_at_1']:.4f}" if "accuracy_at_1" in r else ""))
            table.add_row(model, variant, f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}", f"{r['speedup_vs_seed']:.1f}",
                          f"{r['headlines_per_s']:.0f}", accuracy, f"{r['cold_start_s']:.2f}",
                          f"{r['peak_rss_mb']:.0f}", f"{r['model_file_mb']:.1f}",
                          f"{r['fixed_1x16_ms']:.2f} | {r['fixed_32x16_ms']:.0f}" if "fixed_1x16_ms" in r else "-")
        files = report["file_to_file"][model]
        table.add_row(model, "int8 file to file", "-", "-", "-",
                      f"{files['headlines_per_s']:.0f} ({files['share_of_batch_32']:.0%} of @32)",
                      f"{files['accuracy']:.4f}" if files["accuracy"] is not None and model != DISTILBERT else "-",
                      f"{files['process_s']:.2f} (process)", "-", "-", "-")
        http = report["http"][model]
        table.add_row(model, "int8 via HTTP", f"{http['p50_ms']:.2f}", f"{http['p95_ms']:.2f}", "-",
                      f"{http['concurrent_headlines_per_s']:.0f} (16 clients x 1)", "-",
                      f"{http['cold_start_s']:.2f}", f"{http['server_peak_rss_mb']:.0f}", "-", "-")
    console.print(table)
    console.print(stage_table(report["models"]))
    console.print(share_table(report))
    console.print(limit_table(report))
    targets = Table(title="targets")
    for column in ("target", "limit", "measured", "met"):
        targets.add_column(column)
    for check in report["targets"]:
        targets.add_row(check["target"], check["limit"], f"{check['measured']:.2f}", "yes" if check["met"] else "NO")
    console.print(targets)
    console.print(f"int8 GEMM of this machine ({machine['model_threads']} threads, 512x768x3072): "
                  f"{machine['int8_gemm_gmacs_before']:.0f} GMAC/s before the runs, "
                  f"{machine['int8_gemm_gmacs_after']:.0f} after")


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    import onnxruntime
    import torch

    titles, _ = read_labelled_headlines(args.data)
    models = {"embedded": args.model_dir, DISTILBERT: distilbert_base_random(args.distilbert_dir, args.model_dir)}
    report: dict[str, Any] = {
        "machine": {"cpus_available": available_cpus(), "model_threads": args.threads,
                    "int8_gemm_gmacs_before": int8_gemm_gmacs(args.threads),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "onnxruntime": onnxruntime.__version__, "platform": platform.platform()},
        "data": {"file": str(args.data), "headlines": len(titles),  # sizes for model.tools.cost
                 "mean_characters": float(np.mean([len(title) for title in titles])),
                 "mean_request_bytes": float(np.mean([len(request_body([title])) for title in titles]))},
        "settings": {"latency_requests": args.latency_requests, "seed_requests": args.seed_requests,
                     "seed_batches": args.seed_batches, "throughput_batch": THROUGHPUT_BATCH,
                     "seed_padding": SEED_PADDING},
        "models": {}, "limits": {}, "http": {}, "file_to_file": {},
    }
    for name, model_dir in models.items():
        print(f"{name}: {model_dir}", file=sys.stderr, flush=True)
        report["models"][name] = measure_model(model_dir, args, titles[0])
        report["limits"][name] = limit_summary(model_dir, titles)
        print("  int8 via HTTP ...", file=sys.stderr, flush=True)
        report["http"][name] = measure_endpoint(model_dir, args, titles)
        print("  int8 file to file ...", file=sys.stderr, flush=True)
        report["file_to_file"][name] = measure_file_to_file(model_dir, args)
    report["machine"]["int8_gemm_gmacs_after"] = int8_gemm_gmacs(args.threads)
    report["targets"] = check_targets(report["models"]) + file_to_file_checks(report)
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="a trained model folder with its ONNX export")
    parser.add_argument("--data", type=Path, required=True, help="the NLP-100 test split (test.tsv)")
    parser.add_argument("--output", type=Path, default=Path("artifacts/bench.json"))
    parser.add_argument("--distilbert-dir", type=Path, default=Path("artifacts/bench") / DISTILBERT,
                        help="where the random DistilBERT-base-shaped model folder is built once and reused")
    parser.add_argument("--threads", type=int, default=available_cpus(), help="threads of every model (fixed)")
    parser.add_argument("--latency-requests", type=int, default=200, help="one-headline requests timed per runtime")
    parser.add_argument("--seed-requests", type=int, default=10, help="the seed-style path is slow: fewer requests")
    parser.add_argument("--seed-batches", type=int, default=2, help="32-headline requests timed for the seed style")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--first-headline", help=argparse.SUPPRESS)
    parser.add_argument("--throughput-batches", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return
    report = run_bench(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
