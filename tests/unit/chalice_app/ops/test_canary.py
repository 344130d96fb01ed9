"""chalice_app/ops/canary.py: a new endpoint takes a share of a stage's MODEL_VARIANTS; the other endpoints keep
their proportions in the rest."""

from __future__ import annotations

import json

import pytest
from chalicelib.config import parse_model_variants

from chalice_app.ops.canary import CanaryError, main, with_canary
from devkit.stages import CONFIG_FILE
from tests.support.recorded_calls import printed_calls, recorded_calls


def test_a_first_canary_splits_the_stage_endpoint() -> None:
    assert with_canary({"news-classifier-dev": 1.0}, "news-classifier-dev-12b24c", 0.1) == {
        "news-classifier-dev": 0.9, "news-classifier-dev-12b24c": 0.1}


def test_endpoints_already_routed_to_keep_their_proportions() -> None:
    assert with_canary({"a": 0.9, "b": 0.1}, "c", 0.2) == {"a": 0.72, "b": 0.08, "c": 0.2}
    assert with_canary({"a": 3, "b": 1}, "b", 0.5) == {"a": 0.5, "b": 0.5}  # raising an existing canary


def test_weight_one_completes_the_rollout_and_drops_the_rest() -> None:
    assert with_canary({"a": 0.9, "b": 0.1}, "b", 1.0) == {"b": 1.0}
    assert with_canary({"a": 0.0}, "b", 0.1) == {"b": 1.0}  # nothing else takes traffic


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5, float("nan")])
def test_the_share_must_be_in_zero_to_one(share: float) -> None:
    with pytest.raises(CanaryError, match="greater than 0 and at most 1"):
        with_canary({"a": 1.0}, "b", share)


def test_prints_the_new_model_variants_as_the_api_reads_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stage", "local", "--endpoint", "news-classifier-12b24cfc", "--weight", "0.25"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["variants"] == {"news-classifier": 0.75, "news-classifier-12b24cfc": 0.25}
    parsed = {v.endpoint_name: v.weight for v in parse_model_variants(printed["MODEL_VARIANTS"])}
    assert parsed == printed["variants"]


def test_apply_dry_run_prints_the_routing_then_the_api_redeployment_and_writes_nothing(
        capsys: pytest.CaptureFixture[str]) -> None:
    before = CONFIG_FILE.read_text()
    with recorded_calls() as sent:
        assert main(["--stage", "dev", "--endpoint", "news-classifier-dev-12b24c", "--apply", "--dry-run",
                     "--deploy-args", "--region", "us-east-1"]) == 0
    assert sent == []
    out = capsys.readouterr().out
    variants = json.loads(out.splitlines()[0])["variants"]
    assert variants == {"news-classifier-dev": 0.9, "news-classifier-dev-12b24c": 0.1}
    calls = printed_calls(out, commented=True)
    assert calls[0] == ("stage_config", "set_model_variants")
    assert ("cloudformation", "create_change_set") in calls and ("chalice", "deploy") in calls
    assert not any(service.startswith("sagemaker") or service == "model.tools.deploy_endpoint" for service, _ in calls)
    assert CONFIG_FILE.read_text() == before


@pytest.mark.parametrize(("args", "message"), [
    (["--stage", "local", "--endpoint", "x-1", "--apply", "--deploy-args", "--region", "us-east-1"],
     "not meant for AWS"),
    (["--stage", "dev", "--endpoint", "not valid!"], "not a SageMaker endpoint name"),
    (["--stage", "nowhere", "--endpoint", "x-1"], "no stage 'nowhere'"),
    (["--stage", "dev", "--endpoint", "x-1", "--weight", "1.5"], "at most 1"),
])
def test_bad_input_is_a_message_and_exit_code_2(args: list[str], message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err
