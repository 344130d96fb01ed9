"""The model folder and `model.tar.gz`: metadata, the inference code shipped with the weights, packing.

The folder SageMaker tars after a training job is deployable as it is; a tarball packed for one runtime leaves the
others' model files out, so each serving image downloads only what it serves with (docs/training.md).
`SERVING_FILES` is the one list of code that ships, in `code/` and in the image: tools never do.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

METADATA_FILE = "training.json"
DRIFT_BASELINE_FILE = "drift_baseline.json"
CODE_DIR = "code"
# Every runtime tokenises with it (torch through transformers), though only the ONNX runtimes list it.
TOKENIZER_FILE = "tokenizer.json"
PACKAGE_DIR = Path(__file__).resolve().parent
# What serving imports, relative to the `model` package: the one list `code/model/` and the serving image carry.
SERVING_FILES = (
    "__init__.py", "artifact.py", "batching.py", "calibration.py", "classifier.py", "encoders.py", "labels.py",
    "predict.py", "runtime.py",
    "serving/__init__.py", "serving/faults.py", "serving/inference.py", "serving/json_logging.py",
    "serving/microbatch.py", "serving/server.py",
)
# The Hugging Face toolkit imports the handler as `inference` from the root of `code/`.
HANDLER_FILE = "serving/inference.py"


def write_metadata(model_dir: Path, metadata: dict[str, Any]) -> None:
    (Path(model_dir) / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")


def read_metadata(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / METADATA_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: missing; is {model_dir} a model folder made by training_jobs.train?") from exc


def copy_inference_code(model_dir: Path) -> None:
    """Put `code/inference.py` and the `SERVING_FILES` of the `model` package into the model folder."""
    code = Path(model_dir) / CODE_DIR
    shutil.rmtree(code, ignore_errors=True)
    (code / "model").mkdir(parents=True)
    shutil.copy2(PACKAGE_DIR / HANDLER_FILE, code / "inference.py")
    for name in SERVING_FILES:
        (code / "model" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGE_DIR / name, code / "model" / name)


def left_out(metadata: dict[str, Any], runtime: str) -> set[str]:
    """The other runtimes' model files: what a tarball for `runtime` need not carry."""
    runtimes = metadata.get("runtimes", {})
    if runtime not in runtimes:
        raise ValueError(f"the model folder has no {runtime} model (it has {', '.join(runtimes) or 'none'}); "
                         f"for the ONNX runtimes run `make export-onnx` first")
    others = {name for other, files in runtimes.items() if other != runtime for name in files}
    return others - set(runtimes[runtime]) - {TOKENIZER_FILE}


def pack(model_dir: Path, output: Path, runtime: str | None = None, with_code: bool = True) -> Path:
    """Write `model.tar.gz` in the SageMaker Hugging Face inference layout: files at the root, `code/`.

    With `runtime`, only that runtime's model files go in and the packed `training.json` lists only it;
    `with_code=False` leaves out `code/`, for an image that has the serving code built in.
    """
    model_dir, output = Path(model_dir), Path(output)
    metadata = read_metadata(model_dir)  # refuse to pack something that is not a model folder
    skipped = left_out(metadata, runtime) if runtime else set()
    if runtime:
        metadata["runtimes"] = {runtime: metadata["runtimes"][runtime]}
    if with_code:
        copy_inference_code(model_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(output, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            name = path.relative_to(model_dir)
            if (not path.is_file() or "__pycache__" in path.parts or path.resolve() == output.resolve()
                    or str(name) in skipped or (not with_code and name.parts[0] == CODE_DIR)):
                continue
            if str(name) == METADATA_FILE:
                add_bytes(tar, METADATA_FILE, (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode())
            else:
                tar.add(path, arcname=str(name))
    return output


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser(description="Pack a trained model folder into model.tar.gz for SageMaker.")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--output", type=Path, help="default: MODEL_DIR/../model.tar.gz")
    parser.add_argument("--runtime", help="carry only this runtime's model files (default: every runtime's)")
    args = parser.parse_args()
    output = pack(args.model_dir, args.output or args.model_dir.parent / "model.tar.gz", args.runtime)
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
