"""The image a SageMaker endpoint serves with, and the slim image's build and push to ECR.

The slim image (`model/serving/Dockerfile`: ONNX Runtime int8, tokenizers and the serving code, no torch) is the
default on AWS. It is tagged with a digest of everything its build copies, so an unchanged image is not rebuilt or
pushed twice and a changed one gets a new tag; the repository's tags are immutable (infra/stack.yaml). The Model
names the image by the registry's digest (`REPOSITORY@sha256:...`), never by tag, so what an endpoint serves is
exactly what was pushed. Where docker is missing or its daemon does not answer, the endpoint falls back to the
Hugging Face PyTorch inference image, which has no onnxruntime and serves the PyTorch fp32 model through
`code/inference.py`; the caller is told which image it got and why.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import logging
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import boto3

from devkit.plan import Call, Done, Step, execute
from devkit.repo import REPO_ROOT
from model.runtime import ONNX_INT8, TORCH
from model.serving.inference import RUNTIME_ENV

log = logging.getLogger("model.tools.image")

DOCKERFILE = REPO_ROOT / "model" / "serving" / "Dockerfile"
# Serverless endpoints run x86_64 containers; build for it whatever machine builds.
PLATFORM = "linux/amd64"
SLIM, HUGGING_FACE = "slim", "huggingface"
# Hugging Face PyTorch inference image (CPU: serverless endpoints have no GPUs), transformers 5.
HUGGING_FACE_IMAGE = {"framework": "huggingface", "version": "5.5.3", "base_framework_version": "pytorch2.6.0",
                      "py_version": "py312", "image_scope": "inference"}
# Its model server: one worker, since a serverless container's memory holds one copy of the model.
HUGGING_FACE_ENVIRONMENT = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "HF_HUB_OFFLINE": "1"}
# ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]/NAME, then :TAG or @sha256:DIGEST
ECR_IMAGE = re.compile(r"^(?P<repository>(?P<account>\d{12})\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/"
                       r"(?P<name>[^:@]+))(?::(?P<tag>[\w.-]+)|@(?P<digest>sha256:[0-9a-f]{64}))$")


class ImageError(RuntimeError):
    """The slim image cannot be found, built or pushed; the message says why."""


@dataclass(frozen=True)
class ServingImage:
    """An image URI with the runtime it serves and what its model.tar.gz must carry."""

    kind: str
    uri: str
    runtime: str
    code_in_artifact: bool  # the Hugging Face image runs code/inference.py from the tarball; the slim has model/
    base_environment: dict[str, str] = field(default_factory=dict)

    @property
    def environment(self) -> dict[str, str]:
        """The container's environment: what the endpoint config records about how it serves."""
        return {**self.base_environment, RUNTIME_ENV: self.runtime}


def slim_image(uri: str) -> ServingImage:
    return ServingImage(SLIM, uri, ONNX_INT8, code_in_artifact=False)


def huggingface_image(region: str) -> ServingImage:
    """The Hugging Face PyTorch CPU inference image in the region's registry (no AWS call)."""
    from sagemaker.core import image_uris
    from sagemaker.core.serverless_inference_config import ServerlessInferenceConfig

    uri = image_uris.retrieve(region=region, serverless_inference_config=ServerlessInferenceConfig(),
                              **HUGGING_FACE_IMAGE)
    return ServingImage(HUGGING_FACE, uri, TORCH, code_in_artifact=True, base_environment=HUGGING_FACE_ENVIRONMENT)


# --- what the Dockerfile copies --------------------------------------------------------------------------------

class Copy(NamedTuple):
    """One COPY instruction: sources (globs relative to the build context) and the destination in the image."""

    sources: tuple[str, ...]
    destination: str


def instructions(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line: comments dropped, backslash continuations joined."""
    logical, pending = [], ""
    for line in Path(dockerfile).read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(words[0].upper(), words[1].strip() if len(words) > 1 else "")
            for words in (text.strip().split(None, 1) for text in logical)]


def parse_copy(instruction: str, arguments: str) -> Copy:
    words = [word for word in shlex.split(arguments) if not word.startswith("--")]
    if instruction != "COPY" or len(words) < 2:
        raise ImageError(f"unsupported `{instruction} {arguments}` in {DOCKERFILE.name} (use COPY SRC... DEST)")
    return Copy(tuple(words[:-1]), words[-1])


def dockerfile_copies(dockerfile: Path = DOCKERFILE) -> list[Copy]:
    return [parse_copy(instruction, arguments) for instruction, arguments in instructions(dockerfile)
            if instruction in {"COPY", "ADD"}]


def copied_files(copy: Copy, context: Path = REPO_ROOT) -> list[Path]:
    """The files of the build context one COPY takes, in order; a source that matches nothing is an error."""
    files = []
    for source in copy.sources:
        matches = sorted(Path(path) for path in glob.glob(str(context / source)) if Path(path).is_file())
        if not matches:
            raise ImageError(f"COPY {source}: nothing in {context} matches it")
        files += matches
    return files


def content_tag(dockerfile: Path = DOCKERFILE, context: Path = REPO_ROOT) -> str:
    """`serve-<digest>` of the Dockerfile and every file it copies: same content, same tag."""
    digest = hashlib.sha256(Path(dockerfile).read_bytes())
    for copy in dockerfile_copies(dockerfile):
        for path in copied_files(copy, context):
            digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes())
    return f"serve-{digest.hexdigest()[:12]}"


# --- docker and ECR --------------------------------------------------------------------------------------------

Runner = Callable[..., subprocess.CompletedProcess]


def docker_problem(run: Runner = subprocess.run) -> str | None:
    """None when docker can build here, else why not."""
    if shutil.which("docker") is None:
        return "docker is not installed (no `docker` on PATH)"
    try:
        result = run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "the docker daemon did not answer within 30 s"
    if result.returncode != 0:
        said = (result.stderr or "").strip().splitlines()
        return f"the docker daemon does not answer ({said[-1] if said else 'no reason given'})"
    return None


def repository_name(repository: str) -> str:
    """A repository given by name or by URI (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME`), as its name."""
    return repository.split("/", 1)[1] if "/" in repository else repository


def repository_uri(ecr: Any, repository: str) -> str:
    name = repository_name(repository)
    try:
        return ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryUri"]
    except ecr.exceptions.RepositoryNotFoundException as exc:
        raise ImageError(f"ECR repository {name!r} does not exist: the stage's infra stack creates it "
                         f"(make infra STAGE=...)") from exc


def pushed_digest(ecr: Any, repository: str, tag: str, registry_id: str | None = None) -> str | None:
    """The registry's digest of the image the tag names (`sha256:...`); None when the tag is not there."""
    account = {"registryId": registry_id} if registry_id else {}
    try:
        described = ecr.describe_images(repositoryName=repository_name(repository), imageIds=[{"imageTag": tag}],
                                        **account)
    except ecr.exceptions.ImageNotFoundException:
        return None
    return described["imageDetails"][0]["imageDigest"]


def by_digest(repository_uri: str, digest: str) -> str:
    """`REPOSITORY@sha256:...`: the reference a Model keeps, which no later push can change."""
    return f"{repository_uri}@{digest}"


def ecr_image(image_uri: str) -> re.Match[str]:
    """The parts of an ECR image reference (account, name, tag or digest); SageMaker serves nothing else."""
    found = ECR_IMAGE.match(image_uri)
    if not found:
        raise ImageError(f"--image-uri {image_uri!r}: not an ECR image (ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME"
                         f":TAG or @sha256:DIGEST), which is all SageMaker serves")
    return found


def pinned(ecr: Any, image_uri: str) -> str:
    """An ECR image given by tag, as the digest the tag names now; one given by digest, as it is."""
    found = ecr_image(image_uri)
    if found["digest"]:
        return image_uri
    try:
        digest = pushed_digest(ecr, found["name"], found["tag"], found["account"])
    except ecr.exceptions.RepositoryNotFoundException:
        raise ImageError(f"--image-uri {image_uri!r}: ECR has no repository {found['name']!r}") from None
    if digest is None:
        raise ImageError(f"--image-uri {image_uri!r}: ECR has no image tagged {found['tag']!r} in {found['name']!r}")
    return by_digest(found["repository"], digest)


def registry_login(ecr: Any) -> tuple[str, str, str]:
    """(registry URL, user, password) for `docker login`, from ECR's authorization token."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    return data["proxyEndpoint"], user, password


def build_command(image: str) -> list[str]:
    return ["docker", "build", "--platform", PLATFORM, "-f", str(DOCKERFILE), "-t", image, str(REPO_ROOT)]


def login_command(registry: str, user: str) -> list[str]:
    return ["docker", "login", "--username", user, "--password-stdin", registry]


def push_command(image: str) -> list[str]:
    return ["docker", "push", image]


def docker(command: Sequence[str], run: Runner, stdin: str | None = None) -> None:
    log.info("%s", shlex.join(command))
    if run(list(command), input=stdin, text=True).returncode != 0:
        raise ImageError(f"`{shlex.join(command)}` failed")


class Registry(NamedTuple):
    """What an image's plan acts through: ECR, and the runner of docker commands."""

    ecr: Any
    run: Runner = subprocess.run


ImagePlan = tuple[str, list[Step[Registry]]]  # the image as a dry run names it; the steps whose last ("image") finds it


def shown_uri(repository: str, region: str) -> str:
    """The repository's URI as a dry run shows it: without credentials the account is not known."""
    if "/" in repository:
        return repository
    return f"<account>.dkr.ecr.{region}.amazonaws.com/{repository_name(repository)}"


def planned_digest(tag: str) -> str:
    """What a dry run writes for the digest ECR would answer."""
    return f"<digest of {tag}>"


def push_plan(repository: str, region: str) -> ImagePlan:
    """Build the slim image and push it to the repository, unless this content's tag is there already; the last
    step's result is the image by the digest ECR holds for that tag."""
    name, tag = repository_name(repository), content_tag()
    shown = f"{shown_uri(repository, region)}:{tag}"
    describe_images = {"repositoryName": name, "imageIds": [{"imageTag": tag}]}

    def build_and_push(registry: Registry, done: Done) -> None:
        image = f"{done['repository']}:{tag}"
        if done["pushed"] is not None:
            log.info("%s is already in ECR (%s): nothing to build", image, done["pushed"])
            return
        docker(build_command(image), registry.run)
        url, user, password = registry_login(registry.ecr)
        docker(login_command(url, user), registry.run, stdin=password)
        docker(push_command(image), registry.run)

    def digest_uri(registry: Registry, done: Done) -> str:
        digest = done["pushed"] or pushed_digest(registry.ecr, repository, tag)
        if digest is None:
            raise ImageError(f"`docker push {done['repository']}:{tag}` succeeded but ECR has no image tagged {tag!r}")
        return by_digest(done["repository"], digest)

    return by_digest(shown_uri(repository, region), planned_digest(tag)), [
        Step("repository", [Call("ecr", "describe_repositories", {"repositoryNames": [name]})],
             lambda registry, _: repository_uri(registry.ecr, repository)),
        Step("pushed", [Call("ecr", "describe_images", describe_images,
                             "the build and push below only if this tag is not there yet; else its imageDigest is "
                             "the image")],
             lambda registry, _: pushed_digest(registry.ecr, repository, tag)),
        Step("push", [Call("docker", "build", {"command": build_command(shown)}),
                      Call("ecr", "get_authorization_token", {}),
                      Call("docker", "login", {"command": login_command("<proxyEndpoint>", "AWS")},
                           "password on stdin"),
                      Call("docker", "push", {"command": push_command(shown)})], build_and_push),
        Step("image", [Call("ecr", "describe_images", describe_images,
                            "after the push: its imageDigest is the image the Model names (the repository's tags are "
                            "immutable)")], digest_uri),
    ]


def pin_plan(image_uri: str) -> ImagePlan:
    """An --image-uri by tag resolved to the digest the tag names now, by one ECR call; one by digest, as it is. A
    URI that is not ECR's is refused here, before any step runs."""
    found = ecr_image(image_uri)

    def pin(registry: Registry, _: Done) -> str:
        return pinned(registry.ecr, image_uri)

    if found["digest"]:
        return image_uri, [Step("image", [], pin)]
    params = {"registryId": found["account"], "repositoryName": found["name"], "imageIds": [{"imageTag": found["tag"]}]}
    return by_digest(found["repository"], planned_digest(found["tag"])), [
        Step("image", [Call("ecr", "describe_images", params, "the Model names the image by this imageDigest")], pin)]


def choose(region: str, image_uri: str | None, ecr_repository: str | None, build: Callable[[str], str],
           pin: Callable[[str], str], problem: Callable[[], str | None] = docker_problem) -> ServingImage:
    """The image to serve with, the slim one from `build(repository)` when docker can build; logs which and why.

    `image_uri` is a slim image pushed before (by tag or digest; `pin` names it by digest), or the region's Hugging
    Face image named outright (AWS's own, by its tag). The fallback needs no credentials.
    """
    fallback = huggingface_image(region)
    if image_uri == fallback.uri:
        return fallback
    if image_uri:
        uri = pin(image_uri)
        log.info("serving image: %s (slim, %s)", uri, ONNX_INT8)
        return slim_image(uri)
    reason = "no ECR repository given (--ecr-repository)" if not ecr_repository else problem()
    if reason:
        log.warning("%s: falling back to the Hugging Face PyTorch image %s, which serves PyTorch fp32 (no "
                    "onnxruntime) and starts slower; the slim ONNX int8 image needs docker and --ecr-repository",
                    reason, fallback.uri)
        return fallback
    image = slim_image(build(ecr_repository))
    log.info("serving image: %s (slim, %s)", image.uri, image.runtime)
    return image


def serving_image(region: str, image_uri: str | None, ecr_repository: str | None,
                  dry_run: bool) -> tuple[ServingImage, list[Step[Registry]]]:
    """The image to serve with, by digest. The slim one is built and pushed here, an --image-uri by tag resolved to
    its digest; in a dry run their plans are returned for printing instead, and the image is named as it would be."""
    shown: list[Step[Registry]] = []

    def planned(plan: ImagePlan) -> str:
        name, steps = plan
        if dry_run:
            shown.extend(steps)
            return name
        return execute(steps, Registry(boto3.Session(region_name=region).client("ecr")))["image"]

    return choose(region, image_uri, ecr_repository, lambda repository: planned(push_plan(repository, region)),
                  lambda uri: planned(pin_plan(uri))), shown
