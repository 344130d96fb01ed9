"""Fit the temperature of a model folder on its validation split and store it (`calibration.json`).

    python -m training_jobs.calibrate --model-dir artifacts/model [--data DIR]

Training calls `fit_valid_calibration` at its end; this command calibrates a folder trained before that. Temperature
scaling divides all logits by one T > 0 chosen to minimise the NLL of the validation rows whose stories training
never saw (a feed's kind of headline): one parameter, so a few hundred headlines fit it without over-fitting, and
the predicted label never changes (see model/calibration.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from model.calibration import Calibration, CalibrationError
from model.labels import LabelMap
from training_jobs.config import default_data_dir
from training_jobs.data import DataError, Splits, splits_of_model

log = logging.getLogger("training_jobs.calibrate")
LOG_T_BOUNDS = (-3.0, 3.0)  # T between 0.05 and 20
MIN_UNSEEN_STORY_ROWS = 100  # fewer validation rows of unseen stories than this: fit on all of valid
UNSEEN_STORIES = "valid rows of stories training never saw"


def temperature_nll(logits: np.ndarray, y_true: np.ndarray, temperature: float) -> float:
    """The mean negative log-likelihood of the true classes under softmax(logits / T)."""
    return float(-log_softmax(logits / temperature, axis=1)[np.arange(len(y_true)), y_true].mean())


def fit_calibration(logits: np.ndarray, y_true: Sequence[int], split: str = "valid") -> Calibration:
    """The temperature minimising the NLL of `logits` (float64, bounded search over log T)."""
    logits, y = np.asarray(logits, dtype=np.float64), np.asarray(y_true, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(y) or len(y) < 2:
        raise ValueError(f"cannot fit a temperature on {logits.shape} logits and {len(y)} labels")
    result = minimize_scalar(lambda log_t: temperature_nll(logits, y, float(np.exp(log_t))),
                             bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-5})
    temperature = float(np.exp(result.x))
    details = {"fitted_on": split, "n": len(y), "nll_before": round(temperature_nll(logits, y, 1.0), 6),
               "nll_after": round(temperature_nll(logits, y, temperature), 6)}
    return Calibration(round(temperature, 6), fitted=True, details=details)


def calibration_rows(splits: Splits) -> tuple[list[int], str]:
    """The indices of the validation rows the temperature is fitted on, and their name: the rows of stories no
    training row shares, because a feed brings such stories and a model is surer of the ones it trained on; all of
    valid when fewer than `MIN_UNSEEN_STORY_ROWS` are left (docs/training.md)."""
    seen = {ex.story for ex in splits.train}
    unseen = [i for i, ex in enumerate(splits.valid) if ex.story and ex.story not in seen]
    if len(unseen) >= MIN_UNSEEN_STORY_ROWS:
        return unseen, UNSEEN_STORIES
    return list(range(len(splits.valid))), "valid"


def fit_valid_calibration(valid_logits: np.ndarray, splits: Splits, labels: LabelMap) -> Calibration:
    """The temperature fitted on the calibration rows of `splits.valid`, given the logits of all of valid."""
    rows, name = calibration_rows(splits)
    return fit_calibration(valid_logits[rows], [labels.index_of_category(splits.valid[i].category) for i in rows], name)


def calibrate_model_dir(model_dir: Path, data: Path) -> Calibration:
    """Score the calibration rows of the split training used with the folder's PyTorch model, fit and save T."""
    from model.predict import TorchPredictor

    splits = splits_of_model(model_dir, data)
    logits = TorchPredictor(model_dir).predict_logits([ex.title for ex in splits.valid])
    calibration = fit_valid_calibration(logits, splits, LabelMap.load(model_dir))
    calibration.save(model_dir)
    return calibration


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="a model folder made by training_jobs.train")
    parser.add_argument("--data", type=Path, default=default_data_dir(),
                        help="the data the model was trained on: its validation split fits the temperature")
    args = parser.parse_args(argv)
    try:
        calibration = calibrate_model_dir(args.model_dir, args.data)
    except (DataError, FileNotFoundError, CalibrationError) as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    log.info("temperature %.4f: validation NLL %.4f -> %.4f; wrote %s", calibration.temperature,
             calibration.details["nll_before"], calibration.details["nll_after"], args.model_dir / "calibration.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
