"""The GitHub workflows (.github/workflows/), checked offline: actionlint (its binary comes with the dev
requirements) on every workflow, then what they must do: tests on pull requests, main and tags (the whole suite in
CI's container, set-up and the fast tests on each supported platform and Python, the lock check); main deployed to
dev after the tests pass; a version tag tested again and deployed to prod behind an environment; AWS credentials
only through GitHub's OIDC provider and a role, never stored keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO_ROOT
from tools.platforms import PYTHONS

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
ACTIONS = REPO_ROOT / ".github" / "actions"
DEPLOY_ACTION = ACTIONS / "deploy" / "action.yml"
ACTIONLINT = Path(sys.executable).with_name("actionlint")


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as true
    return document


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ACTIONLINT), "-no-color", *map(str, paths)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


def test_actionlint_accepts_every_workflow() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["deploy.yml", "test.yml"]
    result = actionlint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_does_find_mistakes(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.evnt_name }}\n")
    result = subprocess.run([str(ACTIONLINT), "-no-color", str(broken)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and "evnt_name" in result.stdout


def test_tests_run_on_pull_requests_main_and_tags_through_the_ci_entry_point() -> None:
    workflow = load(WORKFLOWS / "test.yml")
    assert set(workflow["on"]) == {"pull_request", "push", "workflow_call"}
    assert workflow["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    job = workflow["jobs"]["test"]
    assert [step.get("run") for step in job["steps"]][-1] == "bash .ci/run"  # .ci/run is `make test`
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    assert workflow["permissions"] == {"contents": "read"}


def test_set_up_and_the_fast_tests_run_on_every_supported_platform_and_python() -> None:
    """GitHub's ubuntu-latest is Linux x86_64 and macos-latest macOS arm64: the lock's two platforms."""
    job = load(WORKFLOWS / "test.yml")["jobs"]["fast"]
    assert job["runs-on"] == "${{ matrix.os }}"
    assert job["strategy"]["matrix"] == {"os": ["ubuntu-latest", "macos-latest"], "python": list(PYTHONS)}
    (python,) = [step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python")]
    assert python["with"]["python-version"] == "${{ matrix.python }}"
    assert [step["run"] for step in job["steps"] if "run" in step] == ["make setup PYTHON=python",
                                                                       "make test-fast PYTHON=python"]


def test_the_lock_is_checked_where_the_pytorch_cpu_index_is_reachable() -> None:
    job = load(WORKFLOWS / "test.yml")["jobs"]["lock"]
    assert job["runs-on"] == "ubuntu-latest" and job["steps"][-1]["run"] == "make check-lock PYTHON=python"


def test_no_job_needs_an_index_setting_the_lock_does_not_bring() -> None:
    text = "".join(path.read_text() for path in [*WORKFLOWS.glob("*.yml"), *ACTIONS.glob("*/action.yml")])
    assert "INDEX_URL" not in text and "index-url" not in text
    data = [step for job in load(WORKFLOWS / "test.yml")["jobs"].values() for step in job["steps"]
            if step.get("uses") == "./.github/actions/news-data"]
    assert len(data) == 2 and all(step["with"] == {"url": "${{ vars.NEWS_DATA_URL }}"} for step in data)


def test_main_goes_to_dev_after_the_tests_and_tags_to_prod_behind_an_environment() -> None:
    workflow = load(WORKFLOWS / "deploy.yml")
    assert workflow["on"]["workflow_run"] == {"workflows": ["test"], "types": ["completed"], "branches": ["main"]}
    assert workflow["on"]["push"] == {"tags": ["v*"]}
    dev, test, prod = workflow["jobs"]["dev"], workflow["jobs"]["test"], workflow["jobs"]["prod"]
    assert "conclusion == 'success'" in dev["if"] and "head_branch == 'main'" in dev["if"]
    assert dev["environment"] == "dev" and dev["steps"][0]["with"]["ref"] == "${{ github.event.workflow_run.head_sha }}"
    assert test["uses"] == "./.github/workflows/test.yml"
    assert prod["needs"] == "test" and prod["environment"] == "prod" and "refs/tags/v" in prod["if"]
    for job, stage in ((dev, "dev"), (prod, "prod")):
        (deploy,) = [step for step in job["steps"] if step.get("uses") == "./.github/actions/deploy"]
        assert deploy["with"]["stage"] == stage
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_aws_credentials_come_from_oidc_and_a_role_only() -> None:
    workflow = load(WORKFLOWS / "deploy.yml")
    assert workflow["permissions"] == {"contents": "read", "id-token": "write"}
    action = yaml.safe_load(DEPLOY_ACTION.read_text())
    (credentials,) = [s for s in action["runs"]["steps"] if s.get("uses", "").startswith("aws-actions/")]
    assert set(credentials["with"]) == {"role-to-assume", "role-session-name", "aws-region"}
    assert action["runs"]["steps"][-1]["run"] == 'make deploy STAGE="$STAGE"'
    text = "".join(p.read_text() for p in [*WORKFLOWS.glob("*.yml"), DEPLOY_ACTION])
    for stored_key in ("aws-access-key-id", "aws-secret-access-key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert stored_key not in text
    assert "secrets." not in text


@pytest.mark.parametrize("name", ["test.yml", "deploy.yml"])
def test_every_job_has_a_timeout_within_ci_time(name: str) -> None:
    for job in load(WORKFLOWS / name)["jobs"].values():
        assert "uses" in job or 0 < job["timeout-minutes"] <= 90
