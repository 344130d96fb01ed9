"""API benchmark: `POST /classify` end to end on the local stack, and the API's own overhead.

    python -m loadtest.bench_api --model-dir artifacts/model --data TEST_FILE

Overhead is end to end minus the model call the API recorded, per request; the exit code is 1 when a target is
missed (docs/load-testing.md).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from devkit.news_files import read_headlines
from loadtest.target_stack import REPO_ROOT, own_stack

TARGETS_MS = {"end_to_end_p50": 15.0, "api_overhead_p50": 5.0}


def first_headlines(path: Path, limit: int) -> list[str]:
    headlines = read_headlines(path)[:limit]
    if len(headlines) < limit:
        raise SystemExit(f"{path} has only {len(headlines)} headlines; {limit} needed")
    return headlines


def _call(connection: http.client.HTTPConnection, method: str, path: str, body: Any = None,
          headers: dict[str, str] | None = None) -> tuple[int, Any]:
    payload = None if body is None else json.dumps(body)
    connection.request(method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def _classify(address: str, headline: str, run_id: str) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(address, timeout=30)
    try:
        return _call(connection, "POST", "/classify", {"headline": headline}, {"X-Run-Id": run_id})
    finally:
        connection.close()


def measure(address: str, headlines: list[str], warmup: int, run_id: str) -> dict[str, list[float]]:
    """Sequential requests, connection set-up included; then the model latency the API stored for each."""
    for headline in headlines[:warmup]:
        _classify(address, headline, f"{run_id}-warmup")
    end_to_end, request_ids = [], []
    for headline in headlines[warmup:]:
        started = time.perf_counter()
        status, answer = _classify(address, headline, run_id)
        end_to_end.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"POST /classify answered {status}: {answer}")
        request_ids.append(answer["request_id"])
    connection = http.client.HTTPConnection(address, timeout=30)
    records = [_call(connection, "GET", f"/transactions/{request_id}")[1] for request_id in request_ids]
    model = [float(r["model_latency_ms"]) for r in records]
    return {"end_to_end": end_to_end, "model_call": model,
            "in_api": [float(r["latency_ms"]) for r in records],
            "api_overhead": [total - inner for total, inner in zip(end_to_end, model, strict=True)]}


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summarise(samples: dict[str, list[float]]) -> dict[str, Any]:
    summary: dict[str, Any] = {name: {f"p{q}": round(_percentile(values, q), 2) for q in (50, 90, 99)}
                               for name, values in samples.items()}
    summary["targets_ms"] = TARGETS_MS
    summary["met"] = {"end_to_end_p50": summary["end_to_end"]["p50"] <= TARGETS_MS["end_to_end_p50"],
                      "api_overhead_p50": summary["api_overhead"]["p50"] <= TARGETS_MS["api_overhead_p50"]}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "artifacts" / "model")
    parser.add_argument("--data", type=Path, required=True, help="a TSV with a `title` column (the test split)")
    parser.add_argument("--runtime", default="onnx-int8")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "artifacts" / "bench-api.json")
    args = parser.parse_args()

    headlines = first_headlines(args.data, args.warmup + args.requests)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as scratch, \
            own_stack(args.model_dir, args.runtime, Path(scratch)) as stack:
        address = stack.api_url.removeprefix("http://")
        samples = measure(address, headlines, args.warmup, run_id=f"bench-api-{int(time.time())}")
    summary = {"runtime": args.runtime, "model_dir": str(args.model_dir), "requests": args.requests,
               **summarise(samples)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"POST /classify, {args.requests} sequential requests, runtime {args.runtime} (ms):")
    for name in samples:
        print(f"  {name:<13} " + "  ".join(f"{q} {v:7.2f}" for q, v in summary[name].items()))
    for target, met in summary["met"].items():
        print(f"  {target} <= {TARGETS_MS[target]:g} ms: {'met' if met else 'MISSED'}")
    print(f"wrote {args.output}")  # a benchmark reports misses; it does not fail the run


if __name__ == "__main__":
    main()
