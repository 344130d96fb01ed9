"""The GitHub workflows (.github/workflows/), checked offline: actionlint (its binary comes with the dev
requirements) on every workflow, then what they must do: tests on pull requests, main and tags (the whole suite in
CI's container, set-up and the fast tests on each supported platform and Python, the lock check); main deployed to
dev after the tests pass; a version tag tested again and deployed to prod behind an environment; AWS credentials
only through GitHub's OIDC provider and a role, never stored keys. Nothing they run can move: every action pinned by
commit SHA with its version named (and Dependabot told to propose updates), the container by digest, the test data
checked against its sha256, no token left in .git/config."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from locking.platforms import PYTHONS
from tests.support import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
ACTIONS = REPO_ROOT / ".github" / "actions"
DEPLOY_ACTION = ACTIONS / "deploy" / "action.yml"
DATA_ACTION = ACTIONS / "news-data" / "action.yml"
DEPENDABOT = REPO_ROOT / ".github" / "dependabot.yml"
ACTIONLINT = Path(sys.executable).with_name("actionlint")
# `uses:` on its line, with the comment that follows it (YAML drops comments, so lines are read as text)
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*[\"']?(?P<ref>[^\s\"'#]+)[\"']?\s*(?:#\s*(?P<comment>.*?))?\s*$")
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+(?:/[\w./-]+)?)@(?P<sha>[0-9a-f]{40})$")
VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
CI_RUN = REPO_ROOT / ".ci" / "run"


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as true
    return document


def pipeline_files() -> list[Path]:
    """Every file whose `uses:` GitHub runs: the workflows and the repository's composite actions."""
    return sorted([*WORKFLOWS.glob("*.yml"), *ACTIONS.glob("*/action.yml")])


def steps_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps of a workflow's jobs, or of a composite action."""
    if "runs" in document:
        return document["runs"].get("steps", [])
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def unpinned(text: str) -> list[str]:
    """Each `uses:` that can move: anything but a local path, or OWNER/REPO[/PATH]@<40-hex commit> followed by a
    `# vX.Y.Z` comment naming the release (what Dependabot rewrites together with the SHA)."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        found = USES_LINE.match(line)
        if not found or found["ref"].startswith("./"):
            continue
        if found["ref"].startswith("docker://"):
            if not DIGEST.search(found["ref"]):
                problems.append(f"line {number}: {found['ref']} is not pinned by digest")
        elif not PINNED.match(found["ref"]):
            problems.append(f"line {number}: {found['ref']} is not pinned by a full commit SHA")
        elif not VERSION.match(found["comment"] or ""):
            problems.append(f"line {number}: {found['ref']} does not name its version in a `# vX.Y.Z` comment")
    return problems


def ci_commands() -> list[str]:
    """The commands `.ci/run` runs, comments left out: a comment may still name a target the script no longer runs."""
    words = (shlex.split(line, comments=True) for line in CI_RUN.read_text().splitlines())
    return [" ".join(command) for command in words if command]


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


def test_every_action_is_pinned_by_commit_sha_with_its_version_named() -> None:
    for path in pipeline_files():
        assert unpinned(path.read_text()) == [], path
        # every `uses:` of the parsed file was read on its own line (none hides in a flow mapping)
        lines = {m["ref"] for m in map(USES_LINE.match, path.read_text().splitlines()) if m}
        assert {step["uses"] for step in steps_of(load(path)) if "uses" in step} <= lines, path


def test_each_action_is_pinned_to_one_release_everywhere() -> None:
    releases: dict[str, set[tuple[str, str]]] = {}
    for path in pipeline_files():
        for found in filter(None, map(USES_LINE.match, path.read_text().splitlines())):
            if pinned := PINNED.match(found["ref"]):
                releases.setdefault(pinned["action"], set()).add((pinned["sha"], found["comment"]))
    assert set(releases) == {"actions/checkout", "actions/setup-python", "aws-actions/configure-aws-credentials"}
    assert all(len(pins) == 1 for pins in releases.values()), releases


@pytest.mark.parametrize(("line", "problem"), [
    ("      - uses: actions/checkout@v4", "not pinned by a full commit SHA"),
    ("      - uses: actions/checkout@main  # v4.2.2", "not pinned by a full commit SHA"),
    ("    - uses: 'aws-actions/configure-aws-credentials@v6'", "not pinned by a full commit SHA"),
    ("      - uses: actions/checkout@11bd719", "not pinned by a full commit SHA"),
    ("      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "does not name its version"),
    ("      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4", "does not name its version"),
    ("    uses: octo/workflows/.github/workflows/ci.yml@v1", "not pinned by a full commit SHA"),
    ("      - uses: docker://alpine:3.20", "not pinned by digest"),
])
def test_an_action_used_by_tag_or_branch_is_refused(line: str, problem: str) -> None:
    assert [problem in found for found in unpinned(f"steps:\n{line}\n")] == [True]


def test_pinned_and_local_uses_pass_the_check() -> None:
    assert unpinned("      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2\n"
                    "      - uses: ./.github/actions/deploy\n    uses: ./.github/workflows/test.yml\n"
                    f"      - uses: docker://alpine@sha256:{'a' * 64}\n") == []


def test_no_checkout_keeps_the_token_in_git_config() -> None:
    """persist-credentials: false, so no later step (the tests, make deploy) can read or push with the token."""
    checkouts = [step for path in pipeline_files() for step in steps_of(load(path))
                 if step.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) == 5 and all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_the_ci_container_is_pinned_by_digest() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for job in load(path)["jobs"].values():
            images = [job.get("container"), *job.get("services", {}).values()]
            for image in filter(None, images):
                reference = image if isinstance(image, str) else image["image"]
                assert DIGEST.search(reference), f"{path.name}: {reference} is not pinned by digest"
    assert load(WORKFLOWS / "test.yml")["jobs"]["test"]["container"].startswith("python:3.11.")


def test_dependabot_proposes_updates_of_every_pinned_action_and_the_base_image() -> None:
    config = yaml.safe_load(DEPENDABOT.read_text())
    updates = {update["package-ecosystem"]: update for update in config["updates"]}
    action_folders = {f"/{path.parent.relative_to(REPO_ROOT)}" for path in ACTIONS.glob("*/action.yml")}
    assert set(updates["github-actions"]["directories"]) == {"/"} | action_folders
    assert dockerfile_folders() == {updates["docker"]["directory"]} == {"/model/serving"}
    assert all(update["cooldown"]["default-days"] >= 7 for update in updates.values())


def dockerfile_folders() -> set[str]:
    """The folders of the repository's Dockerfiles, as Dependabot names them (hidden folders and outputs skipped)."""
    found = set()
    for folder, subfolders, files in os.walk(REPO_ROOT):
        subfolders[:] = [name for name in subfolders if not name.startswith((".", "__")) and name != "artifacts"]
        if "Dockerfile" in files:
            found.add("/" + Path(folder).relative_to(REPO_ROOT).as_posix())
    return found


def data_archive(path: Path) -> str:
    """A tar.gz shaped like the news_aggregator folder; returns its sha256."""
    with tarfile.open(path, "w:gz") as archive:
        row = b"label\ttitle\nb\tStocks rally\n"
        member = tarfile.TarInfo("news_aggregator/nlp100/train.tsv")
        member.size = len(row)
        archive.addfile(member, io.BytesIO(row))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_data_action(tmp_path: Path, url: str, sha256: str) -> subprocess.CompletedProcess[str]:
    """The news-data action's script as the runner runs it (bash, from the checkout), on a file:// URL."""
    (step,) = yaml.safe_load(DATA_ACTION.read_text())["runs"]["steps"]
    checkout = tmp_path / "repo"
    checkout.mkdir(exist_ok=True)
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], cwd=checkout, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "RUNNER_TEMP": str(tmp_path),
                                                      "NEWS_DATA_URL": url, "NEWS_DATA_SHA256": sha256})


def test_the_test_data_is_unpacked_only_when_its_sha256_matches(tmp_path: Path) -> None:
    archive = tmp_path / "news.tar.gz"
    digest = data_archive(archive)
    unpacked = tmp_path / "shared" / "data" / "news_aggregator" / "nlp100" / "train.tsv"

    refused = run_data_action(tmp_path, archive.as_uri(), "0" * 64)
    assert refused.returncode != 0 and "does not have the sha256 in NEWS_DATA_SHA256" in refused.stdout
    assert not (tmp_path / "shared").exists()  # nothing of the unchecked archive was unpacked
    missing = run_data_action(tmp_path, archive.as_uri(), "")
    assert missing.returncode != 0 and "set the repository variable NEWS_DATA_SHA256" in missing.stdout

    accepted = run_data_action(tmp_path, archive.as_uri(), digest)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert unpacked.read_bytes() == b"label\ttitle\nb\tStocks rally\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["news.tar.gz", "repo", "shared"]  # no download left


def test_tests_run_on_pull_requests_main_and_tags_through_the_ci_entry_point() -> None:
    workflow = load(WORKFLOWS / "test.yml")
    assert set(workflow["on"]) == {"pull_request", "push", "workflow_call"}
    assert workflow["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    job = workflow["jobs"]["test"]
    assert [step.get("run") for step in job["steps"]][-1] == "bash .ci/run"
    assert ci_commands()[-1] == "make test"  # the whole suite, and its exit status is the script's
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
    assert len(data) == 2 and all(step["with"] == {"url": "${{ vars.NEWS_DATA_URL }}",
                                                   "sha256": "${{ vars.NEWS_DATA_SHA256 }}"} for step in data)


def test_main_goes_to_dev_after_the_tests_and_tags_to_prod_behind_an_environment() -> None:
    workflow = load(WORKFLOWS / "deploy.yml")
    assert workflow["on"]["workflow_run"] == {"workflows": ["test"], "types": ["completed"], "branches": ["main"]}
    assert workflow["on"]["push"] == {"tags": ["v*"]}
    dev, test, prod = workflow["jobs"]["dev"], workflow["jobs"]["test"], workflow["jobs"]["prod"]
    assert "conclusion == 'success'" in dev["if"] and "head_branch == 'main'" in dev["if"]
    assert "head_repository.full_name == github.repository" in dev["if"]  # never a fork's branch named main
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



def test_the_pages_the_workflows_point_to_have_the_sections_they_name() -> None:
    """A comment such as `docs/aws-deployment.md ("Permissions to deploy")` must lead to a heading of that page."""
    text = "".join(path.read_text() for path in [*WORKFLOWS.glob("*.yml"), *ACTIONS.glob("*/action.yml")])
    references = re.findall(r'(README|docs/[\w-]+)(?:\.md)?\s+\("([^"]+)"\)', text)
    assert references, "no workflow names a page's section: this test would check nothing"
    missing = [(page, title) for page, title in references
               if not re.search(rf"^#+ {re.escape(title)}$", (REPO_ROOT / f"{page}.md").read_text(), flags=re.M)]
    assert missing == []
