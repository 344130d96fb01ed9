"""The model registry: versions that passed the gate registered, promotions recorded with their metrics, `current`
moved, every write atomic."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

import pytest

from training_jobs.registry import CURRENT_LINK, ModelRegistry, Promotion, Registration, VersionRecord, main

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def record(registry: ModelRegistry, version: str, accuracy: float, inside: bool = True) -> VersionRecord:
    folder = registry.version_dir(version) if inside else registry.root.parent / "outside" / version
    folder.mkdir(parents=True)
    return VersionRecord(version, folder, {"accuracy": accuracy, "macro_f1": accuracy - 0.02, "n": 1336},
                         "test.tsv")


def promotion(candidate: VersionRecord, replaces: VersionRecord, endpoints: dict[str, str] | None = None) -> Promotion:
    endpoint = f"news-classifier-{candidate.version}"
    return Promotion(candidate, replaces, "local", endpoints or {endpoint: candidate.version},
                     {"news-classifier": 0.9, endpoint: 0.1})


def test_a_promotion_records_current_previous_metrics_and_moves_the_symlink(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    base = record(registry, "news-a", 0.90, inside=False)
    first = record(registry, "news-b", 0.91)
    registry.promote(promotion(first, base, {"news-classifier": "news-a", "news-classifier-news-b": "news-b"}), NOW)
    second = record(registry, "news-c", 0.92)
    state = registry.promote(promotion(second, first), NOW)

    assert (state["current"], state["previous"]) == ("news-c", "news-b")
    assert state["versions"]["news-b"]["metrics"]["accuracy"] == 0.91
    assert state["versions"]["news-b"]["path"] == "news-b"  # inside the registry: relative, so it can move
    assert state["versions"]["news-a"]["path"] == str((tmp_path / "outside" / "news-a").resolve())
    assert [p["version"] for p in state["promotions"]] == ["news-b", "news-c"]
    assert json.loads(registry.file.read_text()) == state
    assert os.readlink(registry.root / CURRENT_LINK) == "news-c"
    assert registry.current_dir().resolve() == registry.version_dir("news-c").resolve()
    assert registry.stage_variants("local") == {"news-classifier": 0.9, "news-classifier-news-c": 0.1}
    assert registry.stage_variants("dev") is None
    assert {name: folder.name for name, folder in registry.endpoint_dirs("local").items()} == {
        "news-classifier": "news-a", "news-classifier-news-b": "news-b", "news-classifier-news-c": "news-c"}


def test_a_registered_version_waits_for_its_promotion_and_keeps_its_verdict(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    base, candidate = record(registry, "news-a", 0.90, inside=False), record(registry, "news-b", 0.91)
    with pytest.raises(ValueError, match="'news-b' has not passed the gate"):
        registry.registered("news-b")
    state = registry.register(Registration(candidate, base, {"verdict": "promote", "checks": []}), NOW)
    assert (state["current"], state["promotions"]) == (None, [])
    assert state["versions"]["news-b"]["gate"] == {"verdict": "promote", "checks": [], "against": "news-a"}
    assert registry.registered("news-b") == (candidate, base)
    with pytest.raises(ValueError, match=r"'news-a' has not passed the gate.*registered: news-b"):
        registry.registered("news-a")  # recorded only as what news-b was scored beside
    registry.promote(promotion(candidate, base), NOW)
    assert registry.read()["versions"]["news-b"]["gate"]["against"] == "news-a"
    assert registry.read()["current"] == "news-b"


def test_an_empty_registry_has_no_current_model(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    assert registry.current_dir() is None
    assert registry.stage_variants("local") is None


def test_a_promoted_folder_must_live_in_the_registry(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    outside = record(registry, "news-x", 0.9, inside=False)
    with pytest.raises(ValueError, match="must live in"):
        registry.promote(promotion(outside, outside), NOW)
    assert not registry.file.exists()


def test_a_failed_write_leaves_the_previous_registry_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry(tmp_path / "models")
    base, first = record(registry, "news-a", 0.90), record(registry, "news-b", 0.91)
    registry.promote(promotion(first, base), NOW)
    before = registry.file.read_text()
    second = record(registry, "news-c", 0.92)

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        registry.promote(promotion(second, first), NOW)
    assert registry.file.read_text() == before
    assert os.readlink(registry.root / CURRENT_LINK) == "news-b"
    assert sorted(p.name for p in registry.root.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")) == []


def test_concurrent_promotions_are_all_recorded(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    base = record(registry, "news-base", 0.9)
    candidates = [record(registry, f"news-{i}", 0.9 + i / 100) for i in range(8)]
    threads = [threading.Thread(target=registry.promote, args=(promotion(c, base), NOW)) for c in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = registry.read()
    assert sorted(p["version"] for p in state["promotions"]) == sorted(c.version for c in candidates)
    assert state["current"] == os.readlink(registry.root / CURRENT_LINK)


def test_a_corrupt_registry_is_a_clear_error(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.file.write_text('{"current": ')
    with pytest.raises(ValueError, match="not valid JSON"):
        registry.read()


def test_the_local_split_prints_as_make_local_variants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = ModelRegistry(tmp_path / "models")
    base, first = record(registry, "news-a", 0.90, inside=False), record(registry, "news-b", 0.91)
    assert main(["--registry", str(registry.root)]) == 2
    assert "no promotion on stage 'local'" in capsys.readouterr().err
    registry.promote(promotion(first, base, {"news-classifier": "news-a", "news-classifier-news-b": "news-b"}), NOW)
    assert main(["--registry", str(registry.root)]) == 0
    assert capsys.readouterr().out.split() == [f"news-classifier={(tmp_path / 'outside' / 'news-a').resolve()}:0.9",
                                               f"news-classifier-news-b={registry.root / 'news-b'}:0.1"]
