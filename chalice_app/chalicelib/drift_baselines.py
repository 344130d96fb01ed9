"""Where the drift job finds a model version's baseline: in S3 on AWS, in a file offline.

DRIFT_BASELINE_URI names it, either `s3://bucket/key` or a file path. A `{model_version}` placeholder is
replaced by the version being checked: `make deploy` uploads each version's `drift_baseline.json` beside its
`model.tar.gz` (model/tools/deploy_endpoint.py), so during an A/B test every variant is compared with its own model's
baseline.
S3 is read through one client created on first use; AWS_ENDPOINT_URL_S3 points it at moto offline.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .drift import Baseline

MODEL_VERSION_PLACEHOLDER = "{model_version}"
S3_SCHEME = "s3://"


class BaselineUnavailableError(RuntimeError):
    """No usable baseline for a model version; the message says where the job looked and why it failed."""


def location(uri: str, model_version: str) -> str:
    return uri.replace(MODEL_VERSION_PLACEHOLDER, model_version)


def load(uri: str, model_version: str) -> Baseline:
    """The baseline of `model_version`; it must be that version's own, since labels and scores are the model's."""
    where = location(uri, model_version)
    try:
        baseline = Baseline.from_dict(json.loads(_read(where)))
    except ValueError as exc:  # not JSON (JSONDecodeError), or not a baseline (BaselineError)
        raise BaselineUnavailableError(f"{where}: {exc}") from exc
    if baseline.model_version != model_version:
        raise BaselineUnavailableError(f"{where} is the baseline of model {baseline.model_version!r}, "
                                       f"not of {model_version!r}")
    return baseline


def _read(where: str) -> str:
    if not where.startswith(S3_SCHEME):
        try:
            return Path(where).read_text()
        except OSError as exc:
            raise BaselineUnavailableError(f"{where}: {exc.strerror or exc}") from exc
    bucket, _, key = where.removeprefix(S3_SCHEME).partition("/")
    try:
        return _s3().get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except ClientError as exc:
        raise BaselineUnavailableError(f"{where}: {exc.response.get('Error', {}).get('Code', 'error')}") from exc
    except (BotoCoreError, UnicodeDecodeError) as exc:
        raise BaselineUnavailableError(f"{where}: {exc}") from exc


@functools.cache
def _s3() -> Any:
    return boto3.session.Session().client("s3", config=Config(connect_timeout=2, read_timeout=5,
                                                                 retries={"mode": "standard"}))
