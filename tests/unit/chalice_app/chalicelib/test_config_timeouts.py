"""docs/local-stack.md: the API answers before API Gateway gives up. The worst case of one classification (one
InvokeEndpoint, then one table write: PutItem, or TransactWriteItems for a batch), each using every attempt its
settings allow, every attempt running to its connect and read timeouts and every wait between attempts the longest
botocore's standard retry mode may draw, ends before the Lambda's timeout, itself under API Gateway's 29 s. For
every stage, from the settings the code reads (chalicelib/config.py) in the variables Chalice gives the function
(.chalice/config.json)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from botocore.retries.standard import ExponentialBackoff
from chalice.config import Config
from chalicelib.config import ModelSettings, TableSettings, model_settings, table_settings

from devkit.stages import API_HANDLER, CONFIG_FILE, read_config

API_GATEWAY_TIMEOUT_S = 29  # a REST API's integration timeout


class Throttled:
    """Every error counts as throttling: botocore's longest backoff (1 s base, where other errors get 25-50 ms)."""

    @staticmethod
    def is_throttling_error_from_context(context: object) -> bool:
        return True


def longest_waits(service: str, retries: int) -> float:
    """The most botocore may wait between attempts before `retries` retries: the random factor at 1, no
    retry-after header (neither service sends one)."""
    backoff = ExponentialBackoff(random=lambda: 1.0, service_name=service, throttling_detector=Throttled())
    return sum(backoff.delay_amount(SimpleNamespace(attempt_number=attempt, http_response=None))
               for attempt in range(1, retries + 1))


def worst_model_call_s(settings: ModelSettings) -> float:
    attempts = settings.max_attempts
    return attempts * (settings.connect_timeout + settings.read_timeout) + longest_waits("sagemaker-runtime",
                                                                                         attempts - 1)


def worst_table_write_s(settings: TableSettings) -> float:
    attempts = 1 + settings.max_retries  # PynamoDB's retries are botocore's: total_max_attempts = 1 + retries
    return attempts * (settings.connect_timeout + settings.read_timeout) + longest_waits("dynamodb",
                                                                                        settings.max_retries)


def test_the_longest_waits_are_botocores_throttling_backoff() -> None:
    """1 s, then 2 s: pinned, so that a botocore that waits longer shows up here before it shows up on AWS."""
    assert (longest_waits("sagemaker-runtime", 1), longest_waits("dynamodb", 2)) == (1.0, 3.0)


@pytest.mark.parametrize("stage", sorted(read_config()["stages"]))
def test_the_worst_classification_ends_before_the_lambda_and_api_gateway_give_up(stage: str) -> None:
    function = Config(chalice_stage=stage, function_name=API_HANDLER,
                      config_from_disk=json.loads(CONFIG_FILE.read_text()))
    environment = function.environment_variables
    worst = worst_model_call_s(model_settings(environment)) + worst_table_write_s(table_settings(environment))
    assert worst < function.lambda_timeout < API_GATEWAY_TIMEOUT_S, (stage, worst, function.lambda_timeout)
