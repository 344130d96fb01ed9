"""The ONNX export's graph: the last layer runs for the first token only, the fused embedding gets its ids without
shape plumbing, the int8 graph takes FastGelu, the logits do not change (fp32), no SkipLayerNorm."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from model.artifact import read_metadata
from model.classifier import HeadlineClassifier, load_tokenizer
from model.onnx_export import (
    approximate_gelu,
    export_fp32,
    fuse_for_cpu,
    prune_last_layer_to_first_token,
    simplify_embedding_inputs,
)

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


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def random_fused_graph(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A tiny random BERT (token type ids) or DistilBERT (position ids) classifier, exported and fused: no training."""
    from transformers import AutoModel, BertConfig, DistilBertConfig

    torch.manual_seed(0)
    config = (BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)
              if request.param == "bert" else
              DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                               max_position_embeddings=64))
    config._attn_implementation = "eager"  # as HeadlineClassifier.from_model_dir loads it for export
    encoder = AutoModel.from_config(config)
    model = HeadlineClassifier(encoder, 4).eval()
    input_ids, attention_mask = random_batch()
    path = tmp_path_factory.mktemp(request.param) / "model.onnx"
    export_fp32(model, torch.from_numpy(input_ids), torch.from_numpy(attention_mask), path)
    fuse_for_cpu(path, model.encoder.config)
    return request.param, path


VOCAB = 100


def random_batch() -> tuple[np.ndarray, np.ndarray]:
    """Three rows of 5, 9 and 12 token ids, right-padded: the mask matters."""
    rng = np.random.default_rng(0)
    input_ids = rng.integers(1, VOCAB, (3, 12), dtype=np.int64)
    attention_mask = (np.arange(12) < np.array([[5], [9], [12]])).astype(np.int64)
    return input_ids * attention_mask, attention_mask


def run_graph(path: Path) -> np.ndarray:
    input_ids, attention_mask = random_batch()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]


def operators(path: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def test_the_fused_embedding_gets_its_ids_without_shape_plumbing(random_fused_graph: tuple[str, Path],
                                                                 tmp_path: Path) -> None:
    architecture, fused = random_fused_graph
    simplified = Path(shutil.copy(fused, tmp_path / "simplified.onnx"))
    expected = {"bert": "token type ids: input ids times 0", "distilbert": "position ids: the operator's own 0..S-1"}
    assert simplify_embedding_inputs(simplified) == [expected[architecture]]
    np.testing.assert_allclose(run_graph(simplified), run_graph(fused), atol=1e-5)
    before, after = operators(fused), operators(simplified)
    assert "Shape" in before and not {"Shape", "Expand", "Where", "GatherElements"} & set(after)
    assert not simplify_embedding_inputs(simplified)  # nothing left to simplify


def test_fast_gelu_replaces_every_exact_gelu_within_the_approximations_error(random_fused_graph: tuple[str, Path],
                                                                             tmp_path: Path) -> None:
    _, fused = random_fused_graph
    approximated = tmp_path / "fast_gelu.onnx"
    assert approximate_gelu(fused, approximated) == operators(fused).count("BiasGelu") == 2
    assert "BiasGelu" not in operators(approximated)
    exact, fast = run_graph(fused), run_graph(approximated)
    assert not np.array_equal(fast, exact)
    np.testing.assert_allclose(fast, exact, atol=1e-3)


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


def test_export_records_the_rewrites_and_keeps_residual_adds_apart(tiny_onnx_model_dir: Path) -> None:
    details = read_metadata(tiny_onnx_model_dir)["onnx"]
    assert details["last_layer_first_token_only"] is True
    assert details["fused_operators"]["Attention"] == 2
    assert details["embedding_inputs"] == ["position ids: the operator's own 0..S-1"]
    assert details["int8_fast_gelu"] == 2
    graphs = {name: set(operators(tiny_onnx_model_dir / name)) for name in ("model.onnx", "model.int8.onnx")}
    for found in graphs.values():
        assert "LayerNormalization" in found and "SkipLayerNormalization" not in found and "Shape" not in found
    assert "BiasGelu" in graphs["model.onnx"] and "FastGelu" not in graphs["model.onnx"]  # exact, held to PyTorch
    assert {"FastGelu", "QAttention", "QEmbedLayerNormalization"} <= graphs["model.int8.onnx"]
    assert "BiasGelu" not in graphs["model.int8.onnx"]
