"""The local stage finds the stand-ins by itself: its variables (.chalice/config.json) carry the stack's fake
credentials and name an AWS config file that sends the API's services to the ports `make stand-ins` uses by default,
while variables in the environment (another stack's ports, the tests' servers) still win over that file."""

from __future__ import annotations

import os
import subprocess
import sys

from devkit.local_stack_state import FAKE_AWS, stage_stand_in_urls
from devkit.stages import CHALICE_DIR, stage_environment
from local_stack.orchestrator import parse_args, stand_in_urls

# The endpoints boto3 resolves for the API's two services, run where `chalice local` runs (the project folder).
RESOLVE = ("import boto3; print(boto3.client('dynamodb').meta.endpoint_url, "
           "boto3.client('sagemaker-runtime').meta.endpoint_url, boto3.client('s3').meta.endpoint_url)")


def _resolved(extra: dict[str, str]) -> list[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(stage_environment("local"), **extra)  # as Chalice lays the stage's variables over the process's
    result = subprocess.run([sys.executable, "-c", RESOLVE], cwd=CHALICE_DIR, env=env, capture_output=True,
                            text=True, check=True, timeout=60)
    return result.stdout.split()


def test_the_local_stage_names_the_stand_ins_on_the_stacks_default_ports() -> None:
    assert stage_stand_in_urls() == stand_in_urls(parse_args(["--stand-ins-only"]))


def test_the_local_stage_carries_the_stacks_fake_credentials() -> None:
    assert FAKE_AWS.items() <= stage_environment("local").items()


def test_boto3_in_the_project_resolves_the_stand_ins_and_every_other_service_to_moto() -> None:
    urls = stage_stand_in_urls()
    moto = urls["AWS_ENDPOINT_URL_DYNAMODB"]
    assert _resolved({}) == [moto, urls["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"], moto]


def test_a_variable_in_the_environment_wins_over_the_stages_file() -> None:
    """How `make local` on other ports, and the tests' own servers, point the same stage elsewhere."""
    dynamodb, endpoint, _ = _resolved({"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:1",
                                       "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://127.0.0.1:2"})
    assert (dynamodb, endpoint) == ("http://127.0.0.1:1", "http://127.0.0.1:2")
