"""The ONNX export's graph: the last layer runs for the first token only, the logits do not change, no SkipLayerNorm."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from model.artifact import read_metadata
from model.classifier import HeadlineClassifier, load_tokenizer
from model.onnx_export import export_fp32, fuse_for_cpu, prune_last_layer_to_first_token

# Different lengths, so the batch is padded and the attention mask matters.
HEADLINES = ["Fed leaves interest rates unchanged", "Apple unveils new iPhone",
             "Ebola outbreak spreads to a third country as health workers ask for more help", "Box office"]


@pytest.fixture(scope="module")
def fused_graph(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported and fused, before the rewrite."""
    model = HeadlineClassifier.from_model_dir(tiny_model_dir, attn_implementation="eager")
    probe = load_tokenizer(tiny_model_dir)(HEADLINES[:2], padding=True, return_tensors="pt")
    path = tmp_path_factory.mktemp("fused") / "model.onnx"
    export_fp32(model, probe["input_ids"], probe["attention_mask"], path)
    fuse_for_cpu(path, model.encoder.config)
    return path


def logits(path: Path, model_dir: Path) -> np.ndarray:
    encoded = load_tokenizer(model_dir)(HEADLINES, padding=True, return_tensors="np")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input_ids": encoded["input_ids"].astype(np.int64),
                              "attention_mask": encoded["attention_mask"].astype(np.int64)})[0]


def last_layer_row_counts(path: Path, model_dir: Path) -> dict[str, int]:
    """Rows (tokens) that each feed-forward MatMul of the graph computes for one headline."""
    model = onnx.load(str(path))
    matmuls = [node.output[0] for node in model.graph.node if node.op_type == "MatMul"]
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in matmuls)
    widened = path.with_name("widened.onnx")
    onnx.save(model, str(widened))
    encoded = load_tokenizer(model_dir)(HEADLINES[2:3], return_tensors="np")
    session = ort.InferenceSession(str(widened), providers=["CPUExecutionProvider"])
    outputs = session.run(matmuls, {"input_ids": encoded["input_ids"].astype(np.int64),
                                    "attention_mask": encoded["attention_mask"].astype(np.int64)})
    return {name: value.shape[1] for name, value in zip(matmuls, outputs, strict=True) if value.ndim == 3}


def test_pruned_graph_gives_the_same_logits_with_less_work(fused_graph: Path, tiny_model_dir: Path,
                                                           tmp_path: Path) -> None:
    pruned = Path(shutil.copy(fused_graph, tmp_path / "pruned.onnx"))
    assert prune_last_layer_to_first_token(pruned)
    np.testing.assert_allclose(logits(pruned, tiny_model_dir), logits(fused_graph, tiny_model_dir), atol=1e-6)
    before, after = last_layer_row_counts(fused_graph, tiny_model_dir), last_layer_row_counts(pruned, tiny_model_dir)
    tokens = max(before.values())
    assert set(before.values()) == {tokens} and tokens > 1
    assert sorted(after.values()) == sorted([tokens] * (len(before) - 3) + [1] * 3)  # out-proj, FFN in, FFN out


def test_graph_without_fused_attention_is_left_alone(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = HeadlineClassifier.from_model_dir(tiny_model_dir, attn_implementation="eager")
    probe = load_tokenizer(tiny_model_dir)(HEADLINES[:2], padding=True, return_tensors="pt")
    path = tmp_path / "unfused.onnx"
    export_fp32(model, probe["input_ids"], probe["attention_mask"], path)
    original = path.read_bytes()
    assert not prune_last_layer_to_first_token(path)
    assert path.read_bytes() == original


def test_export_records_the_rewrite_and_keeps_residual_adds_apart(tiny_onnx_model_dir: Path) -> None:
    details = read_metadata(tiny_onnx_model_dir)["onnx"]
    assert details["last_layer_first_token_only"] is True
    assert details["fused_operators"]["Attention"] == 2
    for name in ("model.onnx", "model.int8.onnx"):
        operators = {node.op_type for node in onnx.load(str(tiny_onnx_model_dir / name)).graph.node}
        assert "LayerNormalization" in operators and "SkipLayerNormalization" not in operators
