"""A/B routing: MODEL_VARIANTS is validated, requests follow the weights, clients stick, the default is unchanged."""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest
from chalicelib import routing, validation
from chalicelib.config import ConfigError, Variant, format_model_variants, model_settings, parse_model_variants
from chalicelib.errors import ApiError
from chalicelib.routing import Client
from scipy import stats

from chalice_app.chalicelib import config as tools_config
from chalice_app.ops.canary import set_model_variants
from chalice_app.ops.policies import api_policy
from devkit.stages import CONFIG_FILE, INVOKE_ENDPOINT, model_variants, stage_environment
from tests.support.aws_stages import PLACE

AB = (Variant("news-v3", 0.9), Variant("news-v4", 0.1))


@pytest.mark.parametrize(("raw", "message"), [
    ("news-v3", "cannot be read"),
    ('{"news-v3": NaN}', "cannot be read"),
    ('{"news-v3": 1, "news-v3": 2}', "listed twice"),
    ("{}", "non-empty JSON object"),
    ('["news-v3"]', "non-empty JSON object"),
    ('{"news-v3": -0.5, "news-v4": 1}', "must be a number >= 0"),
    ('{"news-v3": "0.9"}', "must be a number >= 0"),
    ('{"news-v3": true}', "must be a number >= 0"),
    ('{"news-v3": 0, "news-v4": 0}', "sum to 0"),
    ('{"news_v3": 1}', "not a SageMaker endpoint name"),
    ('{"-news": 1}', "not a SageMaker endpoint name"),
    (json.dumps({"n" * 64: 1}), "not a SageMaker endpoint name"),
])
def test_bad_variant_configs_are_config_errors(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_model_variants(raw)


def test_variants_are_sorted_by_name_and_keep_relative_weights() -> None:
    assert parse_model_variants('{"news-v4": 1, "news-v3": 9}') == (Variant("news-v3", 9.0), Variant("news-v4", 1.0))


def test_format_writes_what_parse_reads_and_refuses_what_the_api_would() -> None:
    raw = format_model_variants({"news-v4": 0.1, "news-v3": 0.9})
    assert raw == '{"news-v3": 0.9, "news-v4": 0.1}'
    assert parse_model_variants(raw) == AB
    with pytest.raises(ConfigError, match="sum to 0"):
        format_model_variants({"news-v3": 0.0})


def test_the_settings_read_model_variants_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "news-v3")
    monkeypatch.delenv("MODEL_VARIANTS", raising=False)
    assert model_settings().variants == ()
    monkeypatch.setenv("MODEL_VARIANTS", '{"news-v3": 0.9, "news-v4": 0.1}')
    assert model_settings().variants == AB
    monkeypatch.setenv("MODEL_VARIANTS", "{")
    with pytest.raises(ConfigError, match="MODEL_VARIANTS"):
        model_settings()
    monkeypatch.setenv("MODEL_VARIANTS", '{"news-v3": 1}')
    monkeypatch.setenv("STICKY_BY_API_KEY", "yes")
    with pytest.raises(ConfigError, match="STICKY_BY_API_KEY"):
        model_settings()


def test_without_model_variants_every_request_goes_to_endpoint_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "news-classifier")
    monkeypatch.delenv("MODEL_VARIANTS", raising=False)
    settings = model_settings()
    assert {routing.route(settings, Client(client_id=str(i))) for i in range(50)} == {"news-classifier"}
    monkeypatch.delenv("ENDPOINT_NAME")
    assert routing.route(model_settings(), Client()) is None


def test_random_draws_follow_the_weights() -> None:
    rng = random.Random(7)
    counts = Counter(routing.choose_endpoint(AB, rng=rng) for _ in range(5000))
    assert set(counts) == {"news-v3", "news-v4"}
    assert stats.binomtest(counts["news-v4"], 5000, 0.1).pvalue > 0.01


def test_a_zero_weight_variant_gets_nothing() -> None:
    variants = (Variant("news-v3", 1.0), Variant("news-v4", 0.0), Variant("news-v5", 1.0))
    rng = random.Random(3)
    counts = Counter(routing.choose_endpoint(variants, rng=rng) for _ in range(2000))
    assert counts["news-v4"] == 0 and counts["news-v3"] > 0 and counts["news-v5"] > 0
    assert routing.endpoint_at(variants, 0.999999999999) == "news-v5"


def test_a_client_key_always_gets_the_same_variant_and_keys_spread_by_weight() -> None:
    clients = [f"client-{i}" for i in range(4000)]
    first = [routing.choose_endpoint(AB, key) for key in clients]
    assert first == [routing.choose_endpoint(AB, key, rng=random.Random(i)) for i, key in enumerate(clients)]
    assert stats.binomtest(first.count("news-v4"), len(clients), 0.1).pvalue > 0.01


def test_raising_the_canary_weight_only_moves_clients_into_the_canary() -> None:
    ramp = (Variant("news-v3", 0.5), Variant("news-v4", 0.5))
    clients = [f"client-{i}" for i in range(2000)]
    before = {key: routing.choose_endpoint(AB, key) for key in clients}
    after = {key: routing.choose_endpoint(ramp, key) for key in clients}
    assert all(after[key] == "news-v4" for key in clients if before[key] == "news-v4")
    assert sum(after[key] != before[key] for key in clients) > 0


def test_the_api_key_makes_clients_sticky_only_when_the_stage_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_VARIANTS", '{"news-v3": 0.5, "news-v4": 0.5}')
    monkeypatch.delenv("STICKY_BY_API_KEY", raising=False)
    one_key = Client(api_key="key-shared-by-everyone")
    assert len({routing.route(model_settings(), one_key) for _ in range(200)}) == 2
    monkeypatch.setenv("STICKY_BY_API_KEY", "true")
    assert len({routing.route(model_settings(), one_key) for _ in range(200)}) == 1
    with_id = Client(client_id="user-17", api_key="key-shared-by-everyone")
    assert routing.route(model_settings(), with_id) == routing.choose_endpoint(model_settings().variants, "user-17")


def test_the_client_comes_from_x_client_id_and_api_gateways_key() -> None:
    client = validation.client({"x-client-id": "user-17", "x-api-key": "header-key"}, {"identity": {"apiKey": "k1"}})
    assert (client.client_id, client.api_key) == ("user-17", "k1")
    assert validation.client({"x-api-key": "header-key"}, {}).api_key == "header-key"
    assert validation.client({}, {"identity": {"sourceIp": "127.0.0.1"}}) == Client()
    assert "k1" not in repr(client) and "user-17" not in repr(client)


@pytest.mark.parametrize("value", ["", "a" * 129, "user 17", "usér"])
def test_a_bad_client_id_is_a_400(value: str) -> None:
    with pytest.raises(ApiError) as raised:
        validation.client({"x-client-id": value}, {})
    assert raised.value.status == 400 and "X-Client-Id" in raised.value.message


@pytest.fixture
def chalice_config(tmp_path: Path) -> Path:
    """A copy of .chalice: promotion writes into its config."""
    return Path(shutil.copytree(CONFIG_FILE.parent, tmp_path / ".chalice")) / CONFIG_FILE.name


def _invoke_resources(chalice_config: Path) -> list[str]:
    """The endpoints the stage's API policy grants InvokeEndpoint on, as its next deployment writes it."""
    document = api_policy("dev", PLACE, chalice_config)
    (statement,) = [s for s in document["Statement"] if s["Action"] == INVOKE_ENDPOINT]
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return [r.rsplit("/", 1)[1] for r in resources]


def test_promotion_writes_the_stage_variants_and_grants_exactly_those_endpoints(chalice_config: Path) -> None:
    assert model_variants("dev", chalice_config) == {"news-classifier-dev": 1.0}
    set_model_variants("dev", {"news-classifier-dev": 0.9, "news-classifier-dev-v4": 0.1}, chalice_config)
    assert model_variants("dev", chalice_config) == {"news-classifier-dev": 0.9, "news-classifier-dev-v4": 0.1}
    assert stage_environment("dev", chalice_config)["MODEL_VARIANTS"] == \
        '{"news-classifier-dev": 0.9, "news-classifier-dev-v4": 0.1}'
    assert _invoke_resources(chalice_config) == ["news-classifier-dev", "news-classifier-dev-v4"]
    assert "MODEL_VARIANTS" not in stage_environment("prod", chalice_config)

    set_model_variants("dev", None, chalice_config)
    assert model_variants("dev", chalice_config) == {"news-classifier-dev": 1.0}
    assert _invoke_resources(chalice_config) == ["news-classifier-dev"]


def test_promotion_refuses_bad_weights_and_unknown_stages(chalice_config: Path) -> None:
    before = chalice_config.read_text()
    with pytest.raises(tools_config.ConfigError, match="not a SageMaker endpoint name"):  # canary's own import
        set_model_variants("dev", {"news_v4": 1.0}, chalice_config)
    with pytest.raises(ValueError, match="no stage 'qa'"):
        set_model_variants("qa", {"news-v4": 1.0}, chalice_config)
    assert chalice_config.read_text() == before
