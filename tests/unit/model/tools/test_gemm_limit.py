"""`make bench`'s own-shape limit: the GEMM shapes read from a model's config.json, the rows of its model calls,
the GEMM-only graph, and the share of alternating rounds (on a fake clock, hand-computed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from model.tools import gemm_limit
from model.tools.gemm_limit import (
    EncoderShape,
    GemmOnlyModel,
    call_rows,
    encoder_shape,
    gemm_only_graph,
    gemm_only_macs,
    interleaved_share,
)


def write_config(folder: Path, config: dict) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_bert_and_distilbert_configs_give_their_own_shapes(tmp_path: Path) -> None:
    bert = write_config(tmp_path / "bert", {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6})
    distil = write_config(tmp_path / "distil", {"dim": 768, "hidden_dim": 3072, "n_layers": 6})
    assert encoder_shape(bert) == EncoderShape(384, 1536, 6)
    assert encoder_shape(distil) == EncoderShape(768, 3072, 6)


def test_a_config_without_sizes_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no hidden size"):
        encoder_shape(write_config(tmp_path / "other", {"vocab_size": 10}))


def test_a_layer_is_four_square_gemms_and_the_feed_forward_pair() -> None:
    shape = EncoderShape(4, 16, 2)
    assert shape.gemms(3) == [(3, 4, 4)] * 4 + [(3, 4, 16), (3, 16, 4)]
    assert shape.macs(3) == 2 * 3 * (4 * 16 + 2 * 64)  # 1,152


class FakeClock:
    """perf_counter for gemm_limit: time moves only when a measured call says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(gemm_limit.time, "perf_counter", fake.perf_counter)
    yield fake


class FakeLimit:
    """A GemmOnlyModel stand-in: 16 rows in 1 ms, except during `slow_rounds` (the host's drift), when in 2 ms."""

    def __init__(self, clock: FakeClock, shape: EncoderShape) -> None:
        self.clock, self.shape, self.rows, self.slow = clock, shape, 16, False
        self.macs = shape.macs(16)

    def run(self) -> float:
        self.clock.now += 0.002 if self.slow else 0.001
        return 16.0


def test_each_round_reads_the_runtime_against_the_limit_timed_beside_it(clock: FakeClock) -> None:
    shape = EncoderShape(384, 1536, 6)
    limit = FakeLimit(clock, shape)
    calls = []

    def unit() -> float:
        """16 rows in 1.25 ms, or 2.5 ms when the host is slow: 80% of the limit whatever the host's speed."""
        calls.append(clock.now)
        clock.now += 0.0025 if limit.slow else 0.00125
        limit.slow = len(calls) >= 24  # the host slows down to half after two rounds
        return 16.0

    measured = interleaved_share(unit, limit, rounds=4, block=10, warm_up=2)  # type: ignore[arg-type]
    assert measured.share == pytest.approx(0.8)
    assert (measured.share_q1, measured.share_q3) == pytest.approx((0.8, 0.8))
    assert len(calls) == 4 * (10 + 2)
    # the limit's GMAC/s: 16 rows of work in 1 or 2 ms; the median of the rounds lies between
    fast = shape.macs(16) / 0.001 / 1e9
    assert fast / 2 <= measured.limit_gmacs <= fast


def test_the_gemm_only_model_chains_every_layers_six_gemms_with_their_own_weights() -> None:
    shape = EncoderShape(8, 32, 3)
    for int8, operator in ((True, "DynamicQuantizeMatMul"), (False, "MatMul")):
        graph = gemm_only_graph(shape, rows=5, int8=int8).graph
        assert [node.op_type for node in graph.node] == [operator] * 18
        assert [node.input[0] for node in graph.node] == ["x"] + [node.output[0] for node in graph.node[:-1]]
        weights = {w.name: tuple(w.dims) for w in graph.initializer if w.name.endswith("_w")}
        assert list(weights.values()) == [(depth, columns) for _, depth, columns in shape.gemms(5)] * 3
        model = GemmOnlyModel(shape, rows=5, threads=1, int8=int8)
        assert model.run() == 5.0
        (output,) = model.session.run(None, model.feed)
        assert output.shape == (5, 8) and np.isfinite(output).all()


def test_the_limit_computes_the_last_layer_for_the_first_tokens_only_as_the_exported_graphs_do() -> None:
    shape = EncoderShape(8, 32, 3)
    graph = gemm_only_graph(shape, rows=6, int8=True, last_layer_rows=2).graph
    assert [node.op_type for node in graph.node] == ["DynamicQuantizeMatMul"] * 15 + ["Slice"] + [
        "DynamicQuantizeMatMul"] * 3
    model = GemmOnlyModel(shape, rows=6, threads=1, int8=True, last_layer_rows=2)
    (output,) = model.session.run(None, model.feed)
    assert output.shape == (2, 8)
    # two full layers and the last one's query, key and value at 6 rows; its output and feed-forward GEMMs at 2
    full_layer = 6 * (4 * 8 * 8 + 2 * 8 * 32)
    assert gemm_only_macs(shape, 6) == 3 * full_layer
    assert model.macs == gemm_only_macs(shape, 6, 2) == 2 * full_layer + 6 * 3 * 8 * 8 + 2 * (8 * 8 + 2 * 8 * 32)


def test_call_rows_follow_requests_then_length_sorted_chunks() -> None:
    lengths = [5, 9, 7, 3, 8, 2]
    # requests of 4: [5, 9, 7, 3] -> chunks of 2 sorted [3, 5] [7, 9] -> 2x5, 2x9; then [8, 2] -> 2x8
    assert call_rows(lengths, 4, 2) == [10, 18, 16]
    assert call_rows(lengths, 4, 32) == [36, 16]


def test_bench_reads_each_runtime_at_the_rows_its_model_calls_have() -> None:
    from model.tools.bench import share_cases

    class Model:
        def predict_proba(self, titles: list[str]) -> None:
            """Only the fixed shapes' calls run here: they return what they did, not what the model said."""

    titles, lengths = ["a", "b", "c"], [10, 20, 30]
    onnx = share_cases(Model(), "onnx-int8", titles, lengths)  # type: ignore[arg-type]
    assert {case: (spec.rows, spec.headlines) for case, spec in onnx.items()} == {
        "1x16": (16, 1), "32x16": (256, 16), "p50 @1": (20, 1), "@32": (90, 3)}
    assert (onnx["1x16"].call(), onnx["32x16"].call()) == (16.0, 512.0)
    torch = share_cases(Model(), "torch", titles, lengths)["32x16"]
    assert (torch.rows, torch.headlines) == (512, 32)  # torch: one call of 32
