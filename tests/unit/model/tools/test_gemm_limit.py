"""`make bench`'s own-shape limit: the GEMM shapes read from a model's config.json, the rows of its model calls,
and the share arithmetic (hand-computed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.tools.gemm_limit import EncoderShape, call_rows, encoder_shape, share


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


def test_share_is_gemm_work_over_time_against_the_limit() -> None:
    shape = EncoderShape(384, 1536, 6)
    macs = 6 * 16 * (4 * 384**2 + 2 * 384 * 1536)  # 70,778,880 multiply-adds at 1 x 16 tokens
    assert shape.macs(16) == macs
    # done in 1 ms: 70.78 GMAC/s, against a 141.56 GMAC/s limit: half
    assert share(shape, 16, 0.001, macs / 0.001 / 1e9 * 2) == pytest.approx(0.5)


def test_call_rows_follow_requests_then_length_sorted_chunks() -> None:
    lengths = [5, 9, 7, 3, 8, 2]
    # requests of 4: [5, 9, 7, 3] -> chunks of 2 sorted [3, 5] [7, 9] -> 2x5, 2x9; then [8, 2] -> 2x8
    assert call_rows(lengths, 4, 2) == [10, 18, 16]
    assert call_rows(lengths, 4, 32) == [36, 16]


def test_bench_reads_each_runtime_row_at_the_rows_its_model_calls_have() -> None:
    from model.tools.bench import share_cases

    result = {"fixed_1x16_ms": 2.0, "fixed_32x16_ms": 40.0, "p50_ms": 3.0, "headlines_per_s": 300.0}
    onnx = share_cases(result, [10, 20, 30], chunk=16)
    assert onnx == {"1x16": (16, 16, 0.002), "32x16": (512, 256, 0.04), "p50 @1": (20, 20, 0.003),
                    "@32": (90, 90, 0.01)}
    assert share_cases(result, [10, 20, 30], chunk=32)["32x16"] == (512, 512, 0.04)  # torch: one call of 32
