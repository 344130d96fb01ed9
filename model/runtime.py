"""Load a model folder for serving with a selectable runtime: PyTorch fp32, ONNX Runtime fp32 or int8.

The ONNX runtimes need only `tokenizers`, `onnxruntime` and numpy: this module never imports torch
unless the `torch` runtime is asked for, so the slim serving image starts in a fraction of a second.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from model.artifact import TOKENIZER_FILE, read_metadata
from model.batching import length_sorted_batches
from model.calibration import Calibration
from model.labels import LabelMap

TORCH, ONNX, ONNX_INT8, AUTO = "torch", "onnx", "onnx-int8", "auto"
RUNTIMES = (TORCH, ONNX, ONNX_INT8)
ONNX_FILES = {ONNX: "model.onnx", ONNX_INT8: "model.int8.onnx"}
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
# ONNX Runtime runs a request in length-sorted chunks this large: padding is a third of the tokens of a batch of
# 32 real headlines, and chunks of 16 cut most of it (measured: +10% headlines/s; chunks of 8 lose on equal lengths).
ONNX_CHUNK = 16
# Graph fusions ONNX Runtime would apply at load that make these models slower on CPU (see model.onnx_export).
SLOW_FUSIONS = ("SkipLayerNormFusion",)
log = logging.getLogger("model.runtime")


class Predictor(Protocol):
    """What serving needs from a loaded model, whatever the runtime."""

    labels: LabelMap
    metadata: dict[str, Any]
    calibration: Calibration

    def predict_proba(self, titles: Sequence[str]) -> np.ndarray:
        """Calibrated class probabilities, shape (len(titles), num_labels), in input order."""
        ...

    def predict_logits(self, titles: Sequence[str]) -> np.ndarray:
        """The model's raw logits, shape (len(titles), num_labels), in input order."""
        ...


class RuntimeUnavailableError(RuntimeError):
    """The requested runtime cannot serve this model folder here; the message says why."""


def available_cpus() -> int:
    """CPUs this process may run on (container CPU sets included), not the host's core count.

    Python 3.13+ answers that itself; before it only Linux has the affinity call, so macOS falls back to the host's
    count (it has no CPU sets to honour).
    """
    if hasattr(os, "process_cpu_count"):
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def recorded_runtimes(model_dir: Path) -> dict[str, list[str]]:
    """The runtimes the folder's `training.json` says it carries, with their files."""
    return read_metadata(model_dir).get("runtimes", {})


def resolve_runtime(model_dir: Path, runtime: str) -> str:
    """`auto` means int8 ONNX when the folder has it and onnxruntime is installed, else PyTorch fp32.

    The second condition keeps the same artifact deployable on the Hugging Face PyTorch container,
    which has no onnxruntime.
    """
    if runtime != AUTO:
        if runtime not in RUNTIMES:
            raise RuntimeUnavailableError(f"unknown runtime {runtime!r}; choose one of {', '.join((AUTO, *RUNTIMES))}")
        return runtime
    has_int8 = ONNX_INT8 in recorded_runtimes(model_dir)
    return ONNX_INT8 if has_int8 and importlib.util.find_spec("onnxruntime") else TORCH


class OnnxPredictor:
    """A model folder's ONNX graph with the fast tokenizer: no torch, no transformers."""

    def __init__(self, model_dir: Path, runtime: str = ONNX_INT8, threads: int | None = None,
                 batch_size: int = ONNX_CHUNK, spin_wait: bool = True) -> None:
        import onnxruntime as ort

        model_dir = Path(model_dir)
        self.metadata = read_metadata(model_dir)
        if runtime not in self.metadata.get("runtimes", {}):
            raise RuntimeUnavailableError(
                f"{model_dir} has no {runtime} model; run `make export-onnx MODEL_DIR={model_dir}` first")
        self.labels = LabelMap.load(model_dir)
        self.calibration = Calibration.load(model_dir)
        self.max_length = int(self.metadata["max_length"])
        self.batch_size = batch_size
        self.tokenizer = fast_tokenizer(model_dir, self.max_length)
        self.pad_id = pad_token_id(model_dir, self.tokenizer)
        self.session = ort.InferenceSession(str(model_dir / ONNX_FILES[runtime]), session_options(threads, spin_wait),
                                            providers=["CPUExecutionProvider"], disabled_optimizers=SLOW_FUSIONS)

    def predict_proba(self, titles: Sequence[str]) -> np.ndarray:
        return self.predict_encoded(self.encode(titles))

    def predict_logits(self, titles: Sequence[str]) -> np.ndarray:
        return self.encoded_logits(self.encode(titles))

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        """Token ids per headline, truncated, unpadded; `encode_batch_fast` skips the character offsets (-25%)."""
        return [encoding.ids for encoding in self.tokenizer.encode_batch_fast(list(titles))]

    def predict_encoded(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """Calibrated class probabilities for tokenised headlines, in input order."""
        return self.calibration.probabilities(self.encoded_logits(encoded))

    def encoded_logits(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """Logits of tokenised headlines, run in length-sorted chunks, in input order."""
        out = np.zeros((len(encoded), len(self.labels)), dtype=np.float32)
        for batch in length_sorted_batches([len(ids) for ids in encoded], self.batch_size):
            input_ids, attention_mask = pad_batch([encoded[i] for i in batch], self.pad_id)
            (out[batch],) = self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return out


def session_options(threads: int | None = None, spin_wait: bool = True) -> Any:
    """The serving session's settings: `threads` intra-op threads (default: the CPUs available), one op at a time."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or available_cpus()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle intra-op threads spin for the next task: fastest alone on a machine, wasted cores beside other servers.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
    return options


def fast_tokenizer(model_dir: Path, max_length: int) -> Any:
    """The folder's `tokenizers` tokenizer, truncating at `max_length` and never padding (batches pad themselves)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_dir) / TOKENIZER_FILE))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


def pad_token_id(model_dir: Path, tokenizer: Any) -> int:
    """The id of the tokenizer's pad token, named in `tokenizer_config.json` as transformers saved it."""
    config_path = Path(model_dir) / TOKENIZER_CONFIG_FILE
    name = json.loads(config_path.read_text()).get("pad_token") if config_path.is_file() else None
    token_id = tokenizer.token_to_id(name) if name else None
    if token_id is None:
        raise RuntimeUnavailableError(f"{model_dir}: cannot find the tokenizer's pad token in {TOKENIZER_CONFIG_FILE}")
    return token_id


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token ids to the longest sequence: (input_ids, attention_mask), both int64."""
    width = max(len(ids) for ids in sequences)
    input_ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, ids in enumerate(sequences):
        input_ids[row, :len(ids)] = ids
        attention_mask[row, :len(ids)] = 1
    return input_ids, attention_mask


def load_predictor(model_dir: Path, runtime: str = AUTO, threads: int | None = None,
                   spin_wait: bool = True) -> Predictor:
    """Load a model folder once for repeated prediction; thread pools sized from the CPUs available.

    `spin_wait=False` stops ONNX Runtime's threads from spinning between tasks (torch has no such setting).
    """
    model_dir = Path(model_dir)
    runtime = resolve_runtime(model_dir, runtime)
    if runtime == TORCH:
        import torch

        from model.predict import TorchPredictor

        torch.set_num_threads(threads or available_cpus())
        predictor: Predictor = TorchPredictor(model_dir)
    else:
        predictor = OnnxPredictor(model_dir, runtime, threads, spin_wait=spin_wait)
    calibration = predictor.calibration.describe()
    log.info("loaded %s with runtime %s; calibration: %s", model_dir, runtime, calibration,
             extra={"calibration": calibration})
    return predictor
