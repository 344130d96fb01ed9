"""The speed limit of a model's own matrix products, and the share of it a runtime reaches.

An encoder layer's work is six GEMMs on `rows` tokens: query, key, value and output (hidden x hidden), then the
feed-forward pair (hidden x intermediate, intermediate x hidden). The limit is the model with everything but those
GEMMs taken out: every layer's six, each with its own weights, chained in one ONNX Runtime graph
(DynamicQuantizeMatMul for int8 as the quantised graphs run them, MatMul for fp32) and run with the serving
session's options. A runtime's share is that graph's time over its own; attention's own products, LayerNorm, GELU
and everything around the graph make up the rest. The host's speed drifts by up to 2x within minutes, so the two
are timed in alternating blocks in one process (`interleaved_share`), never minutes apart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.runtime import session_options

# The last layer's GEMMs from this one on (output, then the feed-forward pair) follow the first token only in the
# exported graphs; query, key and value still see every token.
LAST_LAYER_PRUNED_FROM = 3
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


def gemm_only_graph(shape: EncoderShape, rows: int, int8: bool, last_layer_rows: int | None = None) -> Any:
    """Every layer's six GEMMs at `rows` token rows, chained, each with its own weights: the cache traffic and
    per-call activation quantisation of the real model, none of its other work (an ONNX ModelProto).

    `last_layer_rows`: the last layer's output and feed-forward GEMMs run on that many rows only, as the exported
    graphs compute the last layer for each headline's first token (model.onnx_export), so the limit does the same
    work as the runtime read against it."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    nodes, weights, previous = [], [], "x"
    for layer in range(shape.layers):
        for index, (_, depth, columns) in enumerate(shape.gemms(rows)):
            if last_layer_rows is not None and layer == shape.layers - 1 and index == LAST_LAYER_PRUNED_FROM:
                node, tensors = _first_rows(previous, last_layer_rows)
                nodes.append(node)
                weights += tensors
                previous = node.output[0]
            name = f"layer{layer}_gemm{index}"
            node, tensors = _gemm_node(previous, name, depth, columns, int8, rng)
            nodes.append(node)
            weights += tensors
            previous = name
    graph = helper.make_graph(
        nodes, "gemm_only", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, shape.hidden])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [last_layer_rows or rows, shape.hidden])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("com.microsoft", 1)])


def gemm_only_macs(shape: EncoderShape, rows: int, last_layer_rows: int | None = None) -> int:
    """Multiply-adds of one run of `gemm_only_graph`."""
    gemms = shape.gemms(rows) * shape.layers
    if last_layer_rows is not None:
        cut = len(gemms) - len(shape.gemms(rows)) + LAST_LAYER_PRUNED_FROM
        gemms = gemms[:cut] + [(last_layer_rows, depth, columns) for _, depth, columns in gemms[cut:]]
    return sum(count * depth * columns for count, depth, columns in gemms)


def _first_rows(source: str, count: int) -> tuple[Any, list[Any]]:
    """A Slice keeping the first `count` rows: which rows does not change a GEMM's time, only how many."""
    from onnx import helper, numpy_helper

    bounds = [numpy_helper.from_array(np.array([value], np.int64), f"first_rows_{name}")
              for name, value in (("start", 0), ("end", count), ("axis", 0))]
    return helper.make_node("Slice", [source, *(b.name for b in bounds)], ["first_rows"]), bounds


class GemmOnlyModel:
    """`gemm_only_graph` loaded with the serving session's options: the limit a runtime is read against."""

    def __init__(self, shape: EncoderShape, rows: int, threads: int, int8: bool,
                 last_layer_rows: int | None = None) -> None:
        import onnxruntime as ort

        self.shape, self.rows = shape, rows
        self.macs = gemm_only_macs(shape, rows, last_layer_rows)
        self.session = ort.InferenceSession(gemm_only_graph(shape, rows, int8, last_layer_rows).SerializeToString(),
                                            session_options(threads), providers=["CPUExecutionProvider"])
        self.feed = {"x": np.random.default_rng(1).standard_normal((rows, shape.hidden)).astype(np.float32)}

    def run(self) -> float:
        """One run; the token rows it did, as a measured unit returns them."""
        self.session.run(None, self.feed)
        return float(self.rows)


def _gemm_node(source: str, name: str, depth: int, columns: int, int8: bool,
               rng: np.random.Generator) -> tuple[Any, list[Any]]:
    """One GEMM as the exported graphs run it; weights scaled so that values stay finite through the chain."""
    from onnx import helper, numpy_helper

    if int8:
        weights = [numpy_helper.from_array(rng.integers(-127, 128, (depth, columns), dtype=np.int8), f"{name}_w"),
                   numpy_helper.from_array(np.full(columns, 1 / (127 * np.sqrt(depth)), np.float32), f"{name}_s")]
        return helper.make_node("DynamicQuantizeMatMul", [source, f"{name}_w", f"{name}_s"], [name],
                                domain="com.microsoft"), weights
    values = (rng.standard_normal((depth, columns)) / np.sqrt(depth)).astype(np.float32)
    return helper.make_node("MatMul", [source, f"{name}_w"], [name]), [numpy_helper.from_array(values, f"{name}_w")]


@dataclass(frozen=True)
class ShareMeasurement:
    """A runtime's share of its limit over alternating rounds: the median and quartiles of the per-round shares,
    and the limit's median GMAC/s."""

    share: float
    share_q1: float
    share_q3: float
    limit_gmacs: float
    rounds: int


def interleaved_share(unit: Callable[[], float], limit: GemmOnlyModel, rounds: int, block: int,
                      warm_up: int = 3) -> ShareMeasurement:
    """Time `block` calls of `unit` (it returns the token rows of GEMM work it did) and `block` runs of `limit`,
    alternately, the order flipped every round; each round's share is the unit's median token rows per second
    over the limit's. `warm_up` unmeasured calls after each switch let the other session's spinning threads idle."""
    shares, limits = [], []
    for round_index in range(rounds):
        order = (unit, limit.run) if round_index % 2 == 0 else (limit.run, unit)
        rates = {call: rows_per_second(call, block, warm_up) for call in order}
        shares.append(rates[unit] / rates[limit.run])
        limits.append(limit.macs * rates[limit.run] / limit.rows / 1e9)
    q1, median, q3 = np.percentile(shares, [25, 50, 75])
    return ShareMeasurement(float(median), float(q1), float(q3), float(np.median(limits)), rounds)


def rows_per_second(call: Callable[[], float], block: int, warm_up: int) -> float:
    """The median over `block` calls of token rows per second; each call returns the rows it did."""
    for _ in range(warm_up):
        call()
    rates = []
    for _ in range(block):
        started = time.perf_counter()
        done = call()
        rates.append(done / (time.perf_counter() - started))
    return float(np.median(rates))
