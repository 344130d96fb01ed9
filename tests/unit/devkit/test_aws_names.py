"""devkit.aws_names: SageMaker's name rule, and the copies the Lambda zip and the serving image keep of it."""

from __future__ import annotations

import pytest
from chalicelib.config import ENDPOINT_NAME_PATTERN as API_COPY

from devkit.aws_names import SAGEMAKER_NAME, SAGEMAKER_NAME_LIMIT
from model.serving.server import ENDPOINT_NAME_PATTERN as SERVER_COPY

NAMES = ["news-classifier", "a", "A1-b2", "a" * SAGEMAKER_NAME_LIMIT, "a--b", "a" * (SAGEMAKER_NAME_LIMIT + 1), "",
         "-a", "a-", "a_b", "a.b", "news classifier", "ünïcode", "a\n"]


@pytest.mark.parametrize("name", NAMES)
def test_the_lambda_and_the_server_accept_exactly_the_names_sagemaker_does(name: str) -> None:
    expected = bool(SAGEMAKER_NAME.match(name)) and not name.endswith("\n")
    assert bool(API_COPY.fullmatch(name)) == bool(SERVER_COPY.fullmatch(name)) == expected


def test_the_rule_allows_exactly_the_limit() -> None:
    longest = "a" * SAGEMAKER_NAME_LIMIT
    assert SAGEMAKER_NAME.match(longest) and not SAGEMAKER_NAME.match(f"{longest}a")
