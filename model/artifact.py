"""The model folder and `model.tar.gz`: metadata, the inference code shipped with the weights, packing.

A model folder holds weights, encoder config, tokenizer, `labels.json`, `calibration.json` (the temperature every
runtime applies, see calibration.py), `training.json` (metadata),
`drift_baseline.json` (the reference distributions of the drift monitor) and `code/` (the SageMaker
handler plus this package), so the folder SageMaker tars after a training job is already deployable.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

METADATA_FILE = "training.json"
DRIFT_BASELINE_FILE = "drift_baseline.json"
CODE_DIR = "code"
PACKAGE_DIR = Path(__file__).resolve().parent


def write_metadata(model_dir: Path, metadata: dict[str, Any]) -> None:
    (Path(model_dir) / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")


def read_metadata(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / METADATA_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: missing; is {model_dir} a model folder made by training_jobs.train?") from exc


def copy_inference_code(model_dir: Path) -> None:
    """Put `code/inference.py` and the `model` package it imports into the model folder."""
    code = Path(model_dir) / CODE_DIR
    shutil.rmtree(code, ignore_errors=True)
    (code / "model").mkdir(parents=True)
    shutil.copy2(PACKAGE_DIR / "inference.py", code / "inference.py")
    for source in PACKAGE_DIR.glob("*.py"):
        shutil.copy2(source, code / "model" / source.name)


def pack(model_dir: Path, output: Path) -> Path:
    """Write `model.tar.gz` in the SageMaker Hugging Face inference layout: files at the root, `code/`."""
    model_dir, output = Path(model_dir), Path(output)
    read_metadata(model_dir)  # refuse to pack something that is not a model folder
    copy_inference_code(model_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(output, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.resolve() != output.resolve():
                tar.add(path, arcname=str(path.relative_to(model_dir)))
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description="Pack a trained model folder into model.tar.gz for SageMaker.")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--output", type=Path, help="default: MODEL_DIR/../model.tar.gz")
    args = parser.parse_args()
    output = pack(args.model_dir, args.output or args.model_dir.parent / "model.tar.gz")
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
