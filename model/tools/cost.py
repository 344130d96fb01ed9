"""What a million headlines cost on each path, from the last `make bench` and a dated price table.

    python -m model.tools.cost [--bench artifacts/bench.json] [--prices model/tools/prices.toml]

The API path is priced at the latency `make bench` measured through the local endpoint (int8), the batch paths at
its throughput, beside Amazon Comprehend custom classification. Prices carry their date and sources
(`prices.toml`); usage that no benchmark measures (Lambda's own work, memory sizes, index writes) is a flag with
the project's defaults. Arithmetic only: docs/benchmarks.md shows its output.
"""

from __future__ import annotations

import argparse
import json
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.runtime import ONNX_INT8
from model.tools.deploy_endpoint import Serverless

HEADLINES = 1_000_000
PRICES = Path(__file__).with_name("prices.toml")
CHALICE_CONFIG = Path(__file__).resolve().parents[2] / "chalice_app" / ".chalice" / "config.json"
# The API's own work per request beyond the model call (validation, the DynamoDB write, logging): docs/benchmarks.md's
# `make bench-api` overhead p50 on the local stack, rounded up.
API_OVERHEAD_MS = 7.0
# A transaction record is written to the table, its day index and its client index: 3 write units under 1 KB.
RECORD_WRITE_UNITS = 3
COMPREHEND_UNIT_CHARACTERS = 100
COMPREHEND_MIN_UNITS = 3


@dataclass(frozen=True)
class Usage:
    """What one headline uses on the API path that the benchmark does not measure."""

    lambda_memory_mb: int
    endpoint_memory_mb: int
    api_overhead_ms: float = API_OVERHEAD_MS
    record_write_units: int = RECORD_WRITE_UNITS


@dataclass(frozen=True)
class Line:
    path: str
    item: str
    dollars: float | None  # per million headlines; None: a fixed charge, described in `how`
    how: str


def price(prices: dict[str, Any], name: str) -> float:
    """Dollars for one unit of `name` (the table states some per million)."""
    entry = prices[name]
    return entry["price"] / entry["per"]


def api_lines(prices: dict[str, Any], bench: dict[str, Any], model: str, usage: Usage) -> list[Line]:
    """API Gateway + Lambda + the transaction record + SageMaker Serverless, one request per headline."""
    http = bench["http"][model]
    endpoint_s = http["p50_ms"] / 1000
    lambda_ms = math.ceil(http["p50_ms"] + usage.api_overhead_ms)  # Lambda bills whole milliseconds
    payload_gb = (bench["data"]["mean_request_bytes"] + http["mean_response_bytes"]) / 2**30
    return [
        Line("API", "API Gateway REST", HEADLINES * price(prices, "api_gateway_rest_request"), "1 request"),
        Line("API", "Lambda requests", HEADLINES * price(prices, "lambda_request"), "1 request"),
        Line("API", "Lambda duration",
             HEADLINES * lambda_ms / 1000 * usage.lambda_memory_mb / 1024 * price(prices, "lambda_gb_second"),
             f"{lambda_ms} ms x {usage.lambda_memory_mb} MB"),
        Line("API", "DynamoDB record",
             HEADLINES * usage.record_write_units * price(prices, "dynamodb_write_request_unit"),
             f"{usage.record_write_units} write units"),
        Line("API", "SageMaker Serverless compute",
             HEADLINES * endpoint_s * usage.endpoint_memory_mb / 1024 * price(prices, "sagemaker_serverless_gb_second"),
             f"{http['p50_ms']:.2f} ms x {usage.endpoint_memory_mb} MB"),
        Line("API", "SageMaker Serverless data", HEADLINES * payload_gb * price(prices, "sagemaker_serverless_data_gb"),
             f"{payload_gb * 2**30:.0f} bytes in + out"),
    ]


def batch_transform_line(prices: dict[str, Any], bench: dict[str, Any], model: str) -> Line:
    """Instance hours at the int8 model's batch-32 throughput; the instance's 2 cores match the benchmark's."""
    per_second = bench["models"][model][ONNX_INT8]["headlines_per_s"]
    hours = HEADLINES / per_second / 3600
    return Line("Batch Transform", "ml.m5.xlarge hours", hours * price(prices, "batch_transform_instance_hour"),
                f"{hours:.2f} h at {per_second:.0f} headlines/s (start-up not counted)")


def cpu_hours(bench: dict[str, Any], model: str) -> float:
    """CPU-hours of `make classify-file` per million headlines: wall time times the model's threads."""
    return HEADLINES / bench["file_to_file"][model]["headlines_per_s"] / 3600 * bench["machine"]["model_threads"]


def comprehend_lines(prices: dict[str, Any], mean_characters: float) -> list[Line]:
    """Comprehend custom classification: asynchronous jobs by the unit, an endpoint kept fully busy, training."""
    units = max(COMPREHEND_MIN_UNITS, math.ceil(mean_characters / COMPREHEND_UNIT_CHARACTERS))
    iu_seconds = HEADLINES * mean_characters / COMPREHEND_UNIT_CHARACTERS
    return [
        Line("Comprehend", "asynchronous job", HEADLINES * units * price(prices, "comprehend_async_unit"),
             f"{units} units of 100 characters per headline"),
        Line("Comprehend", "endpoint, fully busy",
             iu_seconds * price(prices, "comprehend_endpoint_iu_second"),
             f"{iu_seconds / 3600:.0f} IU-hours at {mean_characters:.0f} characters; "
             f"1 IU all month: ${price(prices, 'comprehend_endpoint_iu_second') * 30 * 86400:,.0f}"),
        Line("Comprehend", "training", None, f"${price(prices, 'comprehend_training_hour'):g} an hour"),
    ]


def cost_table(prices: dict[str, Any], bench: dict[str, Any], model: str, usage: Usage) -> list[Line]:
    api = api_lines(prices, bench, model, usage)
    hours = cpu_hours(bench, model)
    return [*api, Line("API", "total", sum(line.dollars or 0 for line in api), "per million requests of 1 headline"),
            batch_transform_line(prices, bench, model),
            Line("local file command", "CPU-hours", None, f"{hours:.2f} CPU-hours (your machine)"),
            *comprehend_lines(prices, bench["data"]["mean_characters"])]


def dollars(value: float | None) -> str:
    """Cents for whole dollars and more; three significant digits below, where the model's own lines sit."""
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 1 else f"${value:.3g}"


def markdown(lines: Sequence[Line], title: str) -> str:
    rows = [f"| {line.path} | {line.item} | {dollars(line.dollars)} | {line.how} |" for line in lines]
    return "\n".join([title, "", "| path | item | $ per million headlines | from |", "|---|---|---|---|", *rows])


def read_bench(path: Path) -> dict[str, Any]:
    """The benchmark report; an older one without the sizes this needs says how to refresh it."""
    if not path.is_file():
        raise SystemExit(f"{path} not found: run `make bench` first")
    bench = json.loads(path.read_text())
    if "mean_characters" not in bench["data"]:
        raise SystemExit(f"{path} predates headline sizes in the report: run `make bench` again")
    return bench


def default_lambda_memory_mb() -> int:
    """The API's Lambda memory as every stage inherits it from `.chalice/config.json`."""
    return json.loads(CHALICE_CONFIG.read_text())["lambda_memory_size"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, default=Path("artifacts/bench.json"), help="`make bench`'s report")
    parser.add_argument("--prices", type=Path, default=PRICES, help="the dated price table (TOML)")
    parser.add_argument("--model", help="one model of the report (default: each)")
    parser.add_argument("--lambda-memory-mb", type=int, default=None, help="default: .chalice/config.json's")
    parser.add_argument("--endpoint-memory-mb", type=int, default=Serverless.memory_mb)
    parser.add_argument("--api-overhead-ms", type=float, default=API_OVERHEAD_MS,
                        help="Lambda's own work per request beyond the model call")
    parser.add_argument("--record-write-units", type=int, default=RECORD_WRITE_UNITS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    bench = read_bench(args.bench)
    prices = tomllib.loads(args.prices.read_text())
    usage = Usage(args.lambda_memory_mb or default_lambda_memory_mb(), args.endpoint_memory_mb,
                  args.api_overhead_ms, args.record_write_units)
    gemm = bench["machine"]
    for model in [args.model] if args.model else list(bench["models"]):
        title = (f"**{model}** (int8; prices of {prices['date']}, {prices['region']}; bench host int8 GEMM "
                 f"{gemm['int8_gemm_gmacs_before']:.0f} / {gemm['int8_gemm_gmacs_after']:.0f} GMAC/s)")
        print(markdown(cost_table(prices, bench, model, usage), title) + "\n")


if __name__ == "__main__":
    main()
