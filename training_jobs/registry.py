"""The model registry: versioned model folders under artifacts/models/ and one registry.json recording which versions
passed the gate (`register`, by `make retrain`) and where each was promoted (`promote`, by `make promote`).

Every change is a read-modify-write under an exclusive lock, and files are replaced atomically, so a reader sees
the old registry or the new one, never half (docs/ab-and-retraining.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training_jobs.config import REPO_ROOT

DEFAULT_ROOT = REPO_ROOT / "artifacts" / "models"
REGISTRY_FILE = "registry.json"
CURRENT_LINK = "current"
CANDIDATES_DIR = "candidates"
LOCK_FILE = ".registry.lock"


@dataclass(frozen=True)
class VersionRecord:
    """One model version: its folder and how it scored on the gate's held-out data."""

    version: str
    path: Path
    metrics: dict[str, float]  # accuracy, macro_f1, n
    eval_data: str


@dataclass(frozen=True)
class Registration:
    """A candidate that passed the gate against `against`, the model it was scored beside."""

    candidate: VersionRecord  # its folder is the registry's `version_dir(version)`
    against: VersionRecord
    gate: dict[str, Any]  # the gate's report: training_jobs.gate.Decision.as_dict() with its summary


@dataclass(frozen=True)
class Promotion:
    """A candidate that passed the gate, and where it now takes traffic."""

    candidate: VersionRecord  # its folder is the registry's `version_dir(version)`
    replaces: VersionRecord
    stage: str
    endpoints: dict[str, str]  # endpoint name -> version, for endpoints this promotion starts routing to
    variants: dict[str, float]  # the stage's MODEL_VARIANTS after the promotion
    gate: dict[str, Any] | None = None  # the gate's evidence (training_jobs.gate.Decision.summary)


def write_json_atomically(path: Path, payload: Any) -> None:
    """Write a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as sink:
            sink.write(text)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def point_symlink_atomically(link: Path, target: str) -> None:
    """Make `link` point at `target` (relative to the link's folder) by renaming a new symlink over it."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    os.symlink(target, temporary)
    os.replace(temporary, link)


def summary(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {key: metrics[key] for key in ("accuracy", "macro_f1", "n")}


class ModelRegistry:
    """The folder of versions; read freely, changed only through `promote`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def file(self) -> Path:
        return self.root / REGISTRY_FILE

    def read(self) -> dict[str, Any]:
        try:
            return json.loads(self.file.read_text())
        except FileNotFoundError:
            return {"current": None, "previous": None, "versions": {}, "promotions": []}
        except ValueError as exc:
            raise ValueError(f"{self.file}: not valid JSON ({exc}); restore it from version control or a backup") \
                from exc

    def _stored(self, path: Path) -> str:
        """Folders inside the registry relative to it (the registry can move), others absolute."""
        path = Path(path).resolve()
        return str(path.relative_to(self.root.resolve()) if path.is_relative_to(self.root.resolve()) else path)

    def _folder(self, stored: str) -> Path:
        return self.root / stored

    def _entry(self, record: VersionRecord, now: dt.datetime) -> dict[str, Any]:
        return {"path": self._stored(record.path), "metrics": record.metrics, "eval_data": record.eval_data,
                "registered_at": now.isoformat(timespec="seconds")}

    def _record(self, state: dict[str, Any], version: str) -> VersionRecord:
        entry = state["versions"][version]
        return VersionRecord(version, self._folder(entry["path"]), entry["metrics"], entry["eval_data"])

    def current_dir(self) -> Path | None:
        """The folder of the current version, or None while nothing was promoted."""
        state = self.read()
        return self._folder(state["versions"][state["current"]]["path"]) if state["current"] else None

    def version_dir(self, version: str) -> Path:
        return self.root / version

    def candidate_dir(self, version: str) -> Path:
        return self.root / CANDIDATES_DIR / version

    def registered(self, version: str) -> tuple[VersionRecord, VersionRecord]:
        """A version that passed the gate, and the version it passed against: what a promotion of it replaces."""
        state = self.read()
        gate = state["versions"].get(version, {}).get("gate")
        if gate is None or gate["verdict"] != "promote":
            passed = [name for name, entry in state["versions"].items() if entry.get("gate")]
            raise ValueError(f"{self.file}: version {version!r} has not passed the gate (`make retrain` registers the "
                             f"versions that do); registered: {', '.join(passed) or 'none'}")
        return self._record(state, version), self._record(state, gate["against"])

    def stage_variants(self, stage: str) -> dict[str, float] | None:
        """MODEL_VARIANTS as the last promotion on `stage` left it; None if there was none."""
        promotions = [p for p in self.read()["promotions"] if p["stage"] == stage]
        return promotions[-1]["variants"] if promotions else None

    def endpoint_dirs(self, stage: str) -> dict[str, Path]:
        """The model folder behind each endpoint that promotions on `stage` routed to: what to serve locally."""
        state = self.read()
        return {endpoint: self._folder(state["versions"][version]["path"])
                for promotion in state["promotions"] if promotion["stage"] == stage
                for endpoint, version in promotion["endpoints"].items()}

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the registry's lock: one read-modify-write at a time, across processes and threads."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _check_inside(self, record: VersionRecord) -> None:
        if Path(record.path).resolve() != self.version_dir(record.version).resolve():
            raise ValueError(f"{record.path}: a registered model must live in {self.version_dir(record.version)}")

    def register(self, registration: Registration, now: dt.datetime) -> dict[str, Any]:
        """Record a version that passed the gate, with the verdict and the version it passed against; `current` stays
        until the version is promoted."""
        candidate, against = registration.candidate, registration.against
        self._check_inside(candidate)
        with self._exclusive():
            state = self.read()
            state["versions"].setdefault(against.version, self._entry(against, now))
            state["versions"][candidate.version] = {**self._entry(candidate, now),
                                                    "gate": {**registration.gate, "against": against.version}}
            write_json_atomically(self.file, state)
        return state

    def promote(self, promotion: Promotion, now: dt.datetime) -> dict[str, Any]:
        """Record the promotion, then point `current` at the candidate's folder: the file is the truth."""
        candidate, replaced = promotion.candidate, promotion.replaces
        self._check_inside(candidate)
        with self._exclusive():
            state = self.read()
            for record in (replaced, candidate):  # a registered version keeps its entry and gate verdict
                state["versions"].setdefault(record.version, self._entry(record, now))
            state["previous"], state["current"] = replaced.version, candidate.version
            state["promotions"].append({"version": candidate.version, "replaces": replaced.version,
                                        "at": now.isoformat(timespec="seconds"), "stage": promotion.stage,
                                        "endpoints": promotion.endpoints, "variants": promotion.variants,
                                        **({"gate": promotion.gate} if promotion.gate else {})})
            write_json_atomically(self.file, state)
            point_symlink_atomically(self.root / CURRENT_LINK, candidate.version)
        return state


def local_variant_arguments(registry: ModelRegistry, stage: str) -> list[str]:
    """`NAME=DIR:WEIGHT` per routed endpoint, for `local_stack.orchestrator --variant` (make local VARIANTS=)."""
    variants = registry.stage_variants(stage)
    if variants is None:
        raise ValueError(f"{registry.file}: no promotion on stage {stage!r} yet; run `make promote VERSION=...` first")
    folders = registry.endpoint_dirs(stage)
    return [f"{name}={folders[name]}:{weight:.6f}".rstrip("0").rstrip(".") for name, weight in variants.items()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the local A/B split the last promotion recorded, as "
                                                 "`make local VARIANTS=...` takes it: NAME=DIR:WEIGHT ...")
    parser.add_argument("--registry", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args(argv)
    try:
        print(" ".join(local_variant_arguments(ModelRegistry(args.registry), args.stage)))
    except ValueError as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
