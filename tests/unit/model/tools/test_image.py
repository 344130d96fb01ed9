"""model.tools.image without docker: the Dockerfile's COPY lines, the content tag built from them, and their errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from model.tools.image import DOCKERFILE, REPO_ROOT, ImageError, content_tag, dockerfile_copies


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A copy of the build context the Dockerfile uses, plus a file it does not copy."""
    for copy in dockerfile_copies():
        for source in copy.sources:
            for path in REPO_ROOT.glob(source):
                target = tmp_path / path.relative_to(REPO_ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    shutil.copy2(DOCKERFILE, tmp_path / "Dockerfile")
    (tmp_path / "README.md").write_text("not in the image\n")
    return tmp_path


def test_the_tag_changes_with_what_the_image_copies_and_only_that(context: Path) -> None:
    dockerfile = context / "Dockerfile"
    tag = content_tag(dockerfile, context)
    assert tag == content_tag(DOCKERFILE, REPO_ROOT) and tag.startswith("serve-")
    (context / "README.md").write_text("changed, still not in the image\n")
    assert content_tag(dockerfile, context) == tag
    server = context / "model" / "serving" / "server.py"
    server.write_text(server.read_text() + "\n# changed\n")
    assert content_tag(dockerfile, context) != tag


def test_the_copies_are_read_from_the_dockerfile(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nCOPY --chown=1:1 a.txt \\\n    b/*.py /opt/x/\nRUN true\n")
    assert [(c.sources, c.destination) for c in dockerfile_copies(dockerfile)] == [(("a.txt", "b/*.py"), "/opt/x/")]


@pytest.mark.parametrize(("line", "message"), [("ADD model/ /opt/model/", "unsupported `ADD"),
                                               ("COPY model/missing.txt /opt/", "nothing in .* matches")])
def test_what_the_tag_cannot_account_for_is_refused(tmp_path: Path, line: str, message: str) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM python:3.11-slim\n{line}\n")
    with pytest.raises(ImageError, match=message):
        content_tag(dockerfile, REPO_ROOT)
