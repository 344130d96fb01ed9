"""`python -m chalice_app.ops.api_keys`: a key and a usage plan per client on the deployed stage, listed and revoked
alone, against moto's API Gateway."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalice_app.ops import api_keys
from chalice_app.ops.api_keys import ApiKeyCommandError, Limits
from devkit import stages


@pytest.fixture
def apigateway(moto_url: str, aws_credentials: None) -> Any:
    return boto3.client("apigateway", endpoint_url=moto_url)


@pytest.fixture
def chalice_dir(tmp_path: Path, apigateway: Any) -> Path:
    """A copy of the project's .chalice/ with the dev stage deployed to a REST API on moto."""
    shutil.copytree(stages.CHALICE_DIR / ".chalice", tmp_path / ".chalice", ignore=shutil.ignore_patterns("deployed"))
    api_id = apigateway.create_rest_api(name="news-classifier-api")["id"]
    root = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
    apigateway.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigateway.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    apigateway.create_deployment(restApiId=api_id, stageName="dev")
    (tmp_path / ".chalice" / "deployed").mkdir()
    (tmp_path / ".chalice" / "deployed" / "dev.json").write_text(json.dumps(
        {"resources": [{"name": "rest_api", "resource_type": "rest_api", "rest_api_id": api_id,
                        "rest_api_url": f"https://{api_id}.execute-api.us-east-1.amazonaws.com/dev/"}]}))
    return tmp_path


def _config(chalice_dir: Path) -> Path:
    return chalice_dir / ".chalice" / "config.json"


def test_each_client_gets_its_own_key_and_usage_plan_and_is_revoked_alone(apigateway: Any,
                                                                        chalice_dir: Path) -> None:
    api = api_keys.deployed_api("dev", chalice_dir)
    assert api.stage_name == "dev"
    acme = api_keys.create(apigateway, api, "dev", "acme", Limits(rate=5, burst=10, quota_per_day=1000))
    globex = api_keys.create(apigateway, api, "dev", "globex", Limits())
    assert acme["key_id"] != globex["key_id"] and acme["value"]
    [plan] = apigateway.get_usage_plans(keyId=acme["key_id"])["items"]
    assert plan["apiStages"] == [{"apiId": api.rest_api_id, "stage": "dev"}]
    assert (plan["throttle"]["rateLimit"], plan["quota"]["limit"]) == (5.0, 1000)
    assert {row["client"] for row in api_keys.listing(apigateway, "dev", _config(chalice_dir))} == {"acme", "globex"}

    with pytest.raises(ApiKeyCommandError, match="already has a key"):
        api_keys.create(apigateway, api, "dev", "acme", Limits())
    assert api_keys.revoke(apigateway, "dev", "acme") == acme["key_id"]
    assert [row["client"] for row in api_keys.listing(apigateway, "dev", _config(chalice_dir))] == ["globex"]
    assert acme["usage_plan_id"] not in {p["id"] for p in apigateway.get_usage_plans()["items"]}
    with pytest.raises(ApiKeyCommandError, match="has no key"):
        api_keys.revoke(apigateway, "dev", "acme")


def test_an_operator_key_is_named_in_the_stage_and_leaves_with_its_revocation(apigateway: Any,
                                                                             chalice_dir: Path) -> None:
    api = api_keys.deployed_api("dev", chalice_dir)
    ops = api_keys.create(apigateway, api, "dev", "ops-team", Limits())
    config = _config(chalice_dir)
    api_keys.set_role("dev", ops["key_id"], "operator", True, config)
    assert stages.stage_environment("dev", config)["OPERATOR_KEY_IDS"] == ops["key_id"]
    assert [row["operator"] for row in api_keys.listing(apigateway, "dev", config)] == [True]
    api_keys.set_role("dev", ops["key_id"], "operator", False, config)
    assert "OPERATOR_KEY_IDS" not in stages.stage_environment("dev", config)


@pytest.mark.parametrize("client", ["", "a b", "x" * 65, "../etc"])
def test_client_names_are_plain(client: str) -> None:
    with pytest.raises(ApiKeyCommandError, match="client name"):
        api_keys.key_name("dev", client)


def test_an_undeployed_stage_is_refused_with_the_way_out(tmp_path: Path) -> None:
    with pytest.raises(ApiKeyCommandError, match="make deploy STAGE=dev"):
        api_keys.deployed_api("dev", tmp_path)


def test_a_reviewer_key_is_named_in_the_stage_and_its_feedback_may_train(apigateway: Any, chalice_dir: Path) -> None:
    api = api_keys.deployed_api("dev", chalice_dir)
    reviewer = api_keys.create(apigateway, api, "dev", "labelling-team", Limits())
    config = _config(chalice_dir)
    api_keys.set_role("dev", reviewer["key_id"], "reviewer", True, config)
    assert stages.stage_environment("dev", config)["REVIEWER_KEY_IDS"] == reviewer["key_id"]
    [row] = api_keys.listing(apigateway, "dev", config)
    assert (row["reviewer"], row["operator"]) == (True, False)
    assert reviewer["key_id"] in stages.training_keys("dev", config)
    api_keys.set_role("dev", reviewer["key_id"], "reviewer", False, config)
    assert reviewer["key_id"] not in stages.training_keys("dev", config)
