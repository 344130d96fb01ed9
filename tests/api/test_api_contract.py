"""The API as written down: openapi.yaml matches the routes and limits; the Lambda code imports only light deps."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

from chalicelib import review, validation
from openapi_spec_validator import validate

from chalice_app.ops.stages import CHALICE_DIR, stage_environment

# What the Lambda may import besides the standard library: chalice is bundled by Chalice, boto3 is in the runtime.
LAMBDA_IMPORTS = {"chalice", "chalicelib", "boto3", "botocore", "pynamodb", "aws_lambda_powertools"}


def test_the_document_is_valid_openapi(openapi: dict[str, Any]) -> None:
    validate(openapi)


def test_the_document_lists_exactly_the_apps_routes_and_methods(openapi: dict[str, Any]) -> None:
    from app import app

    routes = {(path, method.lower()) for path, methods in app.routes.items() for method in methods}
    documented = {(path, method) for path, item in openapi["paths"].items() for method in item}
    assert documented == routes


def test_the_documented_limits_are_the_enforced_ones(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert schemas["Headline"]["maxLength"] == validation.MAX_HEADLINE_CHARS
    assert schemas["BatchRequest"]["properties"]["headlines"]["maxItems"] == validation.MAX_BATCH_HEADLINES
    assert schemas["FeedbackRequest"]["properties"]["label"]["maxLength"] == validation.MAX_LABEL_CHARS
    assert openapi["components"]["parameters"]["RunId"]["schema"]["pattern"] == f"^{validation._RUN_ID.pattern}$"
    limit = openapi["components"]["parameters"]["Limit"]["schema"]
    assert (limit["maximum"], limit["default"]) == (validation.MAX_RECENT_LIMIT, validation.DEFAULT_RECENT_LIMIT)
    parameters = openapi["components"]["parameters"]
    review_limit, days = parameters["ReviewLimit"]["schema"], parameters["ReviewDays"]["schema"]
    assert (review_limit["maximum"], review_limit["default"]) == (validation.MAX_REVIEW_LIMIT,
                                                                  validation.DEFAULT_REVIEW_LIMIT)
    assert (days["maximum"], days["default"]) == (validation.MAX_REVIEW_DAYS, validation.DEFAULT_REVIEW_DAYS)
    labels = schemas["ReviewLabelsRequest"]["properties"]
    assert labels["request_ids"]["maxItems"] == validation.MAX_REVIEW_IDS
    assert labels["label"]["maxLength"] == validation.MAX_LABEL_CHARS
    assert f"at most {review.MAX_READ} records" in openapi["paths"]["/review"]["get"]["description"]


def _top_level_imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def test_the_lambda_code_imports_only_light_dependencies() -> None:
    lambda_files = [CHALICE_DIR / "app.py", *sorted((CHALICE_DIR / "chalicelib").glob("*.py"))]
    imported = set().union(*(_top_level_imports(path) for path in lambda_files))
    assert imported - set(sys.stdlib_module_names) - {"__future__"} <= LAMBDA_IMPORTS


def test_every_stage_names_its_endpoint_and_table() -> None:
    for stage in ("local", "dev", "prod"):
        env = stage_environment(stage)
        assert env["ENDPOINT_NAME"] and env["TABLE_NAME"] and env["POWERTOOLS_METRICS_NAMESPACE"]


def test_the_documented_body_limit_is_the_enforced_one(openapi: dict[str, Any]) -> None:
    assert openapi["info"]["x-max-body-bytes"] == validation.MAX_BODY_BYTES
    assert f"{validation.MAX_BODY_BYTES:,} bytes" in openapi["components"]["responses"]["TooLarge"]["description"]
