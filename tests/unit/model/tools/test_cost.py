"""The cost per million headlines: the arithmetic against sums done by hand, and the price table's shape."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from model.runtime import ONNX_INT8
from model.tools import cost
from model.tools.cost import PRICES, Usage, cost_table, main

ROUND_PRICES = {
    "date": "2026-01-01", "region": "us-east-1",
    **{name: {"price": value, "per": per} for name, value, per in (
        ("api_gateway_rest_request", 3.5, 1_000_000), ("lambda_request", 0.2, 1_000_000),
        ("lambda_gb_second", 0.00001, 1), ("dynamodb_write_request_unit", 1.0, 1_000_000),
        ("sagemaker_serverless_gb_second", 0.00002, 1), ("sagemaker_serverless_data_gb", 0.01, 1),
        ("batch_transform_instance_hour", 0.36, 1), ("comprehend_async_unit", 0.0005, 1),
        ("comprehend_endpoint_iu_second", 0.0005, 1), ("comprehend_training_hour", 3.0, 1))},
}


def bench_report(mean_characters: float = 60.0) -> dict:
    return {"machine": {"model_threads": 2, "int8_gemm_gmacs_before": 400.0, "int8_gemm_gmacs_after": 380.0},
            "data": {"mean_characters": mean_characters, "mean_request_bytes": 100.0},
            "models": {"m": {ONNX_INT8: {"headlines_per_s": 500.0}}},
            "http": {"m": {"p50_ms": 3.2, "mean_response_bytes": 924.0}},
            "file_to_file": {"m": {"headlines_per_s": 400.0}}}


def dollars(mean_characters: float = 60.0) -> dict[tuple[str, str], float | None]:
    lines = cost_table(ROUND_PRICES, bench_report(mean_characters), "m", Usage(256, 2048))
    return {(line.path, line.item): line.dollars for line in lines}


def test_api_path_per_million_headlines_matches_the_hand_sums() -> None:
    table = dollars()
    assert table["API", "API Gateway REST"] == pytest.approx(3.50)
    assert table["API", "Lambda requests"] == pytest.approx(0.20)
    # ceil(3.2 ms + 7 ms) = 11 ms x 0.25 GB x $0.00001 x 1e6
    assert table["API", "Lambda duration"] == pytest.approx(0.0275)
    assert table["API", "DynamoDB record"] == pytest.approx(3.00)  # 3 write units x $1 per million
    # 3.2 ms x 2 GB x $0.00002 x 1e6
    assert table["API", "SageMaker Serverless compute"] == pytest.approx(0.128)
    # 1,024 bytes = 2**-20 GB x $0.01 x 1e6
    assert table["API", "SageMaker Serverless data"] == pytest.approx(0.01 / 1.048576)
    assert table["API", "total"] == pytest.approx(3.5 + 0.2 + 0.0275 + 3 + 0.128 + 0.01 / 1.048576)


def test_batch_paths_are_priced_by_throughput() -> None:
    # 1e6 / 500 per s = 2,000 s = 5/9 h x $0.36
    assert dollars()["Batch Transform", "ml.m5.xlarge hours"] == pytest.approx(0.20)
    # 1e6 / 400 per s = 2,500 s x 2 threads = 5,000 CPU-seconds
    assert cost.cpu_hours(bench_report(), "m") == pytest.approx(5000 / 3600)


@pytest.mark.parametrize(("mean_characters", "async_dollars", "endpoint_dollars"),
                         [(60.0, 1500.0, 300.0), (350.0, 2000.0, 1750.0)])
def test_comprehend_bills_three_units_at_least_and_an_endpoint_by_characters(
        mean_characters: float, async_dollars: float, endpoint_dollars: float) -> None:
    table = dollars(mean_characters)
    assert table["Comprehend", "asynchronous job"] == pytest.approx(async_dollars)
    # 1e6 x characters / 100 IU-seconds x $0.0005
    assert table["Comprehend", "endpoint, fully busy"] == pytest.approx(endpoint_dollars)


def test_the_price_table_is_dated_and_sourced_for_every_price_the_command_reads() -> None:
    prices = tomllib.loads(PRICES.read_text())
    assert prices["date"] and prices["region"] == "us-east-1"
    for name in (key for key, value in ROUND_PRICES.items() if isinstance(value, dict)):
        entry = prices[name]
        assert entry["price"] > 0 and entry["per"] >= 1
        assert entry["source"].startswith("https://") and entry["checked"] and entry["unit"]


def test_the_command_prints_a_table_per_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(bench_report()))
    main(["--bench", str(path), "--lambda-memory-mb", "256"])
    out = capsys.readouterr().out
    assert "**m** (int8; prices of" in out and "| API | total |" in out and "| Comprehend | training | - |" in out


def test_an_older_report_without_sizes_asks_for_a_new_bench(tmp_path: Path) -> None:
    report = bench_report()
    del report["data"]["mean_characters"]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(report))
    with pytest.raises(SystemExit, match="make bench"):
        main(["--bench", str(path)])


def test_small_amounts_keep_three_significant_digits() -> None:
    assert [cost.dollars(value) for value in (None, 1500.0, 1.875, 0.0458, 0.000408)] == [
        "-", "$1,500.00", "$1.88", "$0.0458", "$0.000408"]
