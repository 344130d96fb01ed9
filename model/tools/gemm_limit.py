"""The speed limit of a model's own matrix products, and the share of it a runtime reaches.

An encoder layer's work is six GEMMs on `rows` tokens: query, key, value and output (hidden x hidden), then the
feed-forward pair (hidden x intermediate, intermediate x hidden). Timing exactly those shapes alone, in ONNX Runtime
(DynamicQuantizeMatMul for int8 as the quantised graphs run them, MatMul for fp32), gives the fastest a model of
that shape could go on this host at that row count; a runtime's share is that time over its own. Attention's own
products, LayerNorm, GELU and everything around the graph make up the rest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# config.json names: BERT-style first, then DistilBERT's.
SHAPE_KEYS = (("hidden_size", "intermediate_size", "num_hidden_layers"), ("dim", "hidden_dim", "n_layers"))


@dataclass(frozen=True)
class EncoderShape:
    hidden: int
    intermediate: int
    layers: int

    def gemms(self, rows: int) -> list[tuple[int, int, int]]:
        """(rows, depth, columns) of one layer's GEMMs: 4 x hidden², then the feed-forward pair."""
        square = (rows, self.hidden, self.hidden)
        return [square] * 4 + [(rows, self.hidden, self.intermediate), (rows, self.intermediate, self.hidden)]

    def macs(self, tokens: int) -> int:
        """Multiply-adds of every layer's GEMMs over `tokens` token rows (padding included)."""
        return self.layers * tokens * (4 * self.hidden**2 + 2 * self.hidden * self.intermediate)


def encoder_shape(model_dir: Path) -> EncoderShape:
    """The encoder's sizes from its config.json, in whichever naming the architecture uses."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    for hidden, intermediate, layers in SHAPE_KEYS:
        if hidden in config:
            return EncoderShape(config[hidden], config[intermediate], config[layers])
    raise ValueError(f"{model_dir}/config.json names no hidden size ({', '.join(k[0] for k in SHAPE_KEYS)})")


def call_rows(lengths: Sequence[int], request: int, chunk: int) -> list[int]:
    """Token rows of every model call when the split is sent `request` headlines at a time, each request run in
    length-sorted chunks of `chunk` padded to their longest (as the predictors do)."""
    rows = []
    for start in range(0, len(lengths), request):
        ordered = sorted(lengths[start:start + request])
        rows += [len(ordered[i:i + chunk]) * ordered[i:i + chunk][-1] for i in range(0, len(ordered), chunk)]
    return rows


def gemm_seconds(threads: int, rows: int, depth: int, columns: int, int8: bool, repeats: int = 30) -> float:
    """Median time of one rows x depth x columns product in ONNX Runtime, as the int8 or fp32 graphs run it."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        weights = [numpy_helper.from_array(rng.integers(-127, 128, (depth, columns), dtype=np.int8), "w"),
                   numpy_helper.from_array(np.full(columns, 0.01, np.float32), "w_scale")]
        node = helper.make_node("DynamicQuantizeMatMul", ["x", "w", "w_scale"], ["y"], domain="com.microsoft")
    else:
        weights = [numpy_helper.from_array(rng.standard_normal((depth, columns)).astype(np.float32), "w")]
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
    graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, depth])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, columns])], weights)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(helper.make_model(graph, opset_imports=opsets).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    feed = {"x": rng.standard_normal((rows, depth)).astype(np.float32)}
    seconds = []
    for _ in range(repeats + 5):
        started = time.perf_counter()
        session.run(None, feed)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds[5:]))


def limit_gmacs(shape: EncoderShape, rows: int, threads: int, int8: bool) -> float:
    """GMAC/s of one layer's GEMMs at `rows`, each timed alone: the model's own-shape limit at that row count."""
    distinct = {gemm: shape.gemms(rows).count(gemm) for gemm in shape.gemms(rows)}
    seconds = sum(count * gemm_seconds(threads, *gemm, int8=int8) for gemm, count in distinct.items())
    return shape.macs(rows) / shape.layers / seconds / 1e9


def share(shape: EncoderShape, tokens: int, seconds: float, limit: float) -> float:
    """The fraction of the limit (GMAC/s) reached: GEMM work over `tokens` rows done in `seconds`."""
    return shape.macs(tokens) / seconds / 1e9 / limit
