"""The API's settings, read from environment variables on every use.

Chalice stages set them, and the test client only while a request runs, so nothing is read at import time. The
timeouts keep the API's own answer inside API Gateway's 29 s (docs/local-stack.md).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from .drift import DriftThresholds

SERVICE_NAME = "news-classifier-api"
MODEL_VARIANTS = "MODEL_VARIANTS"
UNCERTAIN_BELOW = "UNCERTAIN_BELOW"
# The calibrated top score below which a classification is "uncertain": a copy of model/calibration.py's
# UNCERTAIN_BELOW (chosen on validation data, see the README), pinned by
# tests/unit/chalice_app/chalicelib/test_config_uncertain.py because the Lambda zip cannot import model/.
DEFAULT_UNCERTAIN_BELOW = 0.6
# SageMaker's rule for endpoint names: a copy of devkit.aws_names.SAGEMAKER_NAME, since the Lambda zip holds
# chalice_app/ alone; tests/unit/devkit/test_aws_names.py pins the two.
ENDPOINT_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


class ConfigError(RuntimeError):
    """An environment variable holds a value the API cannot use."""


def _optional(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """`environ` None: the process's variables as they are now (Chalice's test client swaps os.environ)."""
    return (os.environ if environ is None else environ).get(name, "").strip() or None


def _seconds(name: str, default: float, environ: Mapping[str, str] | None) -> float:
    raw = _optional(name, environ)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from exc
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be positive")
    return value


def _flag(name: str, environ: Mapping[str, str] | None) -> bool:
    raw = _optional(name, environ)
    if raw not in (None, "true", "false"):
        raise ConfigError(f"{name}={raw!r} must be true or false")
    return raw == "true"


def _count(name: str, default: int, minimum: int, environ: Mapping[str, str] | None) -> int:
    raw = _optional(name, environ)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:  # isdigit alone accepts "²"
        raise ConfigError(f"{name}={raw!r} must be a whole number >= {minimum}")
    return int(raw)


@dataclass(frozen=True)
class Variant:
    """One arm of an A/B test: a whole endpoint, as a serverless endpoint hosts a single production variant."""

    endpoint_name: str
    weight: float


def reject_constant(name: str) -> NoReturn:
    """`parse_constant` for json.loads: NaN and Infinity are not JSON (RFC 8259), though Python accepts them."""
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    names = [name for name, _ in pairs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"endpoint(s) listed twice: {', '.join(duplicates)}")
    return dict(pairs)


def parse_model_variants(raw: str) -> tuple[Variant, ...]:
    """MODEL_VARIANTS, a JSON object endpoint name -> weight, e.g. `{"news-v3": 0.9, "news-v4": 0.1}`.

    Weights are relative shares (they need not sum to 1); an endpoint may have weight 0 (listed, no traffic),
    but the total must be positive. Sorted by name, so routing does not depend on how the object was written.
    """
    try:
        weights = json.loads(raw, object_pairs_hook=_unique_keys, parse_constant=reject_constant)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise ConfigError(f"{MODEL_VARIANTS}={raw[:200]!r} cannot be read: {exc}") from exc
    if not isinstance(weights, dict) or not weights:
        raise ConfigError(f"{MODEL_VARIANTS}={raw[:200]!r} must be a non-empty JSON object endpoint name -> weight")
    variants = tuple(_variant(name, weight) for name, weight in sorted(weights.items()))
    if sum(v.weight for v in variants) <= 0:
        raise ConfigError(f"{MODEL_VARIANTS}={raw[:200]!r}: the weights sum to 0; give some endpoint a positive weight")
    return variants


def _variant(name: str, weight: object) -> Variant:
    if not ENDPOINT_NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{MODEL_VARIANTS}: {name[:80]!r} is not a SageMaker endpoint name "
                          "(1-63 letters, digits and hyphens, starting and ending with a letter or digit)")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
        raise ConfigError(f"{MODEL_VARIANTS}: the weight of {name!r} must be a number >= 0, not {weight!r}")
    return Variant(name, float(weight))


def format_model_variants(weights: Mapping[str, float]) -> str:
    """The MODEL_VARIANTS value for these weights, checked as the API will check it (promotion writes this)."""
    raw = json.dumps(dict(sorted(weights.items())))
    parse_model_variants(raw)
    return raw


@dataclass(frozen=True)
class ModelSettings:
    """Where and how to call the SageMaker endpoints; also the cache key of their client."""

    endpoint_name: str | None  # ENDPOINT_NAME: the stage's endpoint, called alone unless MODEL_VARIANTS is set
    variants: tuple[Variant, ...]  # MODEL_VARIANTS: the A/B test's endpoints and weights; empty when unset
    # STICKY_BY_API_KEY=true: requests without X-Client-Id stick to a variant by their API key. Only for stages
    # with many keys: with one key for all traffic, all of it would stick to one variant.
    sticky_by_api_key: bool
    region: str | None
    endpoint_url: str | None  # AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: unset on AWS, the local endpoint offline
    connect_timeout: float
    read_timeout: float
    max_attempts: int


@dataclass(frozen=True)
class TableSettings:
    """Where and how to write the transaction log; also decides when the PynamoDB model is re-bound."""

    table_name: str | None
    region: str | None
    endpoint_url: str | None  # AWS_ENDPOINT_URL_DYNAMODB: unset on AWS, moto's server offline
    connect_timeout: float
    read_timeout: float
    max_retries: int
    ttl_days: int


def _region(environ: Mapping[str, str] | None) -> str | None:
    return _optional("AWS_REGION", environ) or _optional("AWS_DEFAULT_REGION", environ)


def model_settings(environ: Mapping[str, str] | None = None) -> ModelSettings:
    variants = _optional(MODEL_VARIANTS, environ)
    return ModelSettings(
        endpoint_name=_optional("ENDPOINT_NAME", environ),
        variants=() if variants is None else parse_model_variants(variants),
        sticky_by_api_key=_flag("STICKY_BY_API_KEY", environ),
        region=_region(environ),
        endpoint_url=_optional("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", environ),
        connect_timeout=_seconds("MODEL_CONNECT_TIMEOUT_SECONDS", 1.0, environ),
        read_timeout=_seconds("MODEL_READ_TIMEOUT_SECONDS", 7.0, environ),
        max_attempts=_count("MODEL_MAX_ATTEMPTS", 2, 1, environ),
    )


def table_settings(environ: Mapping[str, str] | None = None) -> TableSettings:
    return TableSettings(
        table_name=_optional("TABLE_NAME", environ),
        region=_region(environ),
        endpoint_url=_optional("AWS_ENDPOINT_URL_DYNAMODB", environ),
        connect_timeout=_seconds("TABLE_CONNECT_TIMEOUT_SECONDS", 1.0, environ),
        read_timeout=_seconds("TABLE_READ_TIMEOUT_SECONDS", 1.0, environ),
        max_retries=_count("TABLE_MAX_RETRIES", 2, 0, environ),
        ttl_days=_count("TRANSACTION_TTL_DAYS", 90, 1, environ),
    )


@dataclass(frozen=True)
class DriftSettings:
    """What the scheduled drift job compares (chalicelib/drift_monitor.py)."""

    # DRIFT_BASELINE_URI: s3://bucket/key or a file path; `{model_version}` in it is replaced by each version seen
    baseline_uri: str | None
    window_hours: int  # DRIFT_WINDOW_HOURS: how far back the job reads transactions
    min_samples: int  # DRIFT_MIN_SAMPLES: a model version with fewer transactions in the window gets no verdict
    max_records: int  # DRIFT_MAX_RECORDS: stop reading there, so one run stays within the Lambda's time limit


def drift_settings(environ: Mapping[str, str] | None = None) -> DriftSettings:
    return DriftSettings(
        baseline_uri=_optional("DRIFT_BASELINE_URI", environ),
        window_hours=_count("DRIFT_WINDOW_HOURS", 24, 1, environ),
        min_samples=_count("DRIFT_MIN_SAMPLES", DriftThresholds.min_samples, 1, environ),
        max_records=_count("DRIFT_MAX_RECORDS", 50_000, 1, environ),
    )


@dataclass(frozen=True)
class AccessSettings:
    """Who may read whose traffic (chalicelib/callers.py)."""

    # OPERATOR_KEY_IDS: comma-separated API key ids that may list and read every client's transactions; "*" makes
    # every caller an operator, which only a stage without keys (local) may do
    operator_key_ids: frozenset[str]
    everyone_is_operator: bool


EVERYONE = "*"


@dataclass(frozen=True)
class KeyIds:
    """API key ids as a stage names them: comma-separated ids, or "*" for every key."""

    ids: frozenset[str]
    everyone: bool

    def __contains__(self, key_id: object) -> bool:
        return self.everyone or key_id in self.ids


def key_ids(name: str, environ: Mapping[str, str] | None = None) -> KeyIds:
    """The variable `name` read as a list of key ids (unset: none); "*" cannot be combined with ids."""
    raw = _optional(name, environ) or ""
    ids = frozenset(part.strip() for part in raw.split(",") if part.strip())
    if EVERYONE in ids and ids != {EVERYONE}:
        raise ConfigError(f"{name}={raw[:200]!r}: '*' (everyone) cannot be combined with key ids")
    return KeyIds(ids - {EVERYONE}, EVERYONE in ids)


def access_settings(environ: Mapping[str, str] | None = None) -> AccessSettings:
    operators = key_ids("OPERATOR_KEY_IDS", environ)
    return AccessSettings(operator_key_ids=operators.ids, everyone_is_operator=operators.everyone)


@dataclass(frozen=True)
class ScoreSettings:
    """How the API reads the model's (calibrated) scores."""

    # UNCERTAIN_BELOW: a result whose top score is below this gets `"uncertain": true`; the drift job's
    # low-confidence share counts the same results. 0 flags nothing.
    uncertain_below: float


def score_settings(environ: Mapping[str, str] | None = None) -> ScoreSettings:
    raw = _optional(UNCERTAIN_BELOW, environ)
    if raw is None:
        return ScoreSettings(DEFAULT_UNCERTAIN_BELOW)
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{UNCERTAIN_BELOW}={raw!r} is not a number") from exc
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ConfigError(f"{UNCERTAIN_BELOW}={raw!r} must be a score from 0 (flag nothing) up to, not including, 1")
    return ScoreSettings(value)


def settings_problems(environ: Mapping[str, str]) -> list[str]:
    """What the API would refuse in these variables, so a deployment refuses the stage instead.

    At run time a broken setting fails requests, and one the transaction record needs (TRANSACTION_TTL_DAYS)
    leaves them unrecorded; checked before deploying, it never reaches a Lambda. One problem per group of settings.
    """
    problems = []
    for read in (model_settings, table_settings, drift_settings, access_settings, score_settings):
        try:
            read(environ)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def exposure_problems(environ: Mapping[str, str]) -> list[str]:
    """What would open a stage on AWS to anyone: data routes without keys, or every caller an operator."""
    problems = []
    if not api_key_required(environ):
        problems.append("API_KEY_REQUIRED=false would deploy every data route without an API key")
    try:
        if access_settings(environ).everyone_is_operator:
            problems.append("OPERATOR_KEY_IDS='*' would let every key read every client's transactions")
    except ConfigError:
        pass  # reported by settings_problems
    return problems


def metrics_namespace() -> str:
    """Powertools' own variable, so the same setting works for every Powertools utility."""
    return _optional("POWERTOOLS_METRICS_NAMESPACE") or "NewsClassifier"


def api_key_required(environ: Mapping[str, str] | None = None) -> bool:
    """API Gateway rejects data routes without a usage plan's key unless API_KEY_REQUIRED=false (the local stage):
    a stage that forgets the setting fails closed.

    The one setting read at import: Chalice builds the routes when it imports app.py, after setting the stage's
    variables (`chalice local`, `chalice package`).
    """
    return _optional("API_KEY_REQUIRED", environ) != "false"


def running_in_lambda(environ: Mapping[str, str] | None = None) -> bool:
    """Lambda's runtime sets AWS_LAMBDA_FUNCTION_NAME in every function, and no configuration can unset it (a
    reserved variable); `chalice local` and Chalice's test client do not set it."""
    return _optional("AWS_LAMBDA_FUNCTION_NAME", environ) is not None


def client_id_is_identity(environ: Mapping[str, str] | None = None) -> bool:
    """Whether X-Client-Id may stand in for an API key id: only on a stage that runs without keys and outside
    Lambda (`chalice local`), where nothing else tells callers apart. Anywhere else a header any caller can set
    must not pass for a key that API Gateway checked."""
    return not api_key_required(environ) and not running_in_lambda(environ)


def configuration_status() -> dict[str, object]:
    """What /health/details tells operators: which endpoint(s) and table the API would use, without calling either.

    `variants` (endpoint -> weight) appears only when MODEL_VARIANTS routes between endpoints.
    """
    model, table = model_settings(), table_settings().table_name
    endpoint = model.endpoint_name
    status: dict[str, object] = {"status": "ok",
                                 "endpoint": {"name": endpoint, "configured": endpoint is not None},
                                 "table": {"name": table, "configured": table is not None}}
    if model.variants:
        status["variants"] = {v.endpoint_name: v.weight for v in model.variants}
    return status
