"""What one model version on SageMaker is called and what SageMaker is asked for: names, tags, requests, S3 keys.

Names carry the model version, so a transaction's `model_version` finds the artifact, image and runtime that served
it (docs/aws-deployment.md). Everything here is checked or computed before any AWS call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devkit.aws_names import SAGEMAKER_NAME, SAGEMAKER_NAME_LIMIT
from model.artifact import DRIFT_BASELINE_FILE, read_metadata
from model.runtime import ONNX_INT8
from model.tools.image import ServingImage

MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_CONCURRENCY = 200
VARIANT = "AllTraffic"


class ReleaseError(RuntimeError):
    """The deployment cannot go ahead or did not become healthy; the message says why."""


@dataclass(frozen=True)
class Serverless:
    """The endpoint's ServerlessConfig, checked against SageMaker's limits before any call."""

    memory_mb: int = 3072
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.memory_mb not in MEMORY_SIZES_MB:
            raise ReleaseError(f"--memory {self.memory_mb}: choose one of {', '.join(map(str, MEMORY_SIZES_MB))} MB")
        if not 1 <= self.max_concurrency <= MAX_CONCURRENCY:
            raise ReleaseError(f"--max-concurrency {self.max_concurrency}: must be 1 to {MAX_CONCURRENCY}")
        if self.provisioned_concurrency is not None and not 1 <= self.provisioned_concurrency <= self.max_concurrency:
            raise ReleaseError(f"--provisioned-concurrency {self.provisioned_concurrency}: must be 1 to "
                               f"--max-concurrency ({self.max_concurrency})")

    def request(self) -> dict[str, int]:
        config = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        if self.provisioned_concurrency:
            config["ProvisionedConcurrency"] = self.provisioned_concurrency
        return config


@dataclass(frozen=True)
class Release:
    """One model version on one endpoint: every name, tag and request of a deployment derives from it."""

    endpoint: str
    model_version: str
    artifact_uri: str
    image: ServingImage
    role_arn: str
    serverless: Serverless

    def __post_init__(self) -> None:
        if not SAGEMAKER_NAME.match(self.endpoint):
            raise ReleaseError(f"endpoint name {self.endpoint!r}: letters, digits and single hyphens, at most "
                               f"{SAGEMAKER_NAME_LIMIT}")
        if len(self.name) > SAGEMAKER_NAME_LIMIT:
            raise ReleaseError(f"{self.name!r} is longer than SageMaker's {SAGEMAKER_NAME_LIMIT} characters: shorten "
                               f"the endpoint name to {SAGEMAKER_NAME_LIMIT - len(self.name) + len(self.endpoint)} "
                               "characters")
        if not SAGEMAKER_NAME.match(self.name):
            raise ReleaseError(f"model version {self.model_version!r}: letters, digits and single hyphens only")

    @property
    def name(self) -> str:
        """Model and EndpointConfig name: readable version, plus a digest so changed settings get a new config."""
        settings = json.dumps([self.artifact_uri, self.image.uri, self.role_arn, asdict(self.serverless),
                               self.image.environment], sort_keys=True)
        return f"{self.endpoint}-{self.model_version}-{hashlib.sha256(settings.encode()).hexdigest()[:6]}"

    def tags(self) -> list[dict[str, str]]:
        return [{"Key": "Endpoint", "Value": self.endpoint}, {"Key": "ModelVersion", "Value": self.model_version},
                {"Key": "ModelArtifact", "Value": self.artifact_uri}, {"Key": "ServingImage", "Value": self.image.uri},
                {"Key": "ModelRuntime", "Value": self.image.runtime}]

    def model_request(self) -> dict[str, Any]:
        return {"ModelName": self.name, "ExecutionRoleArn": self.role_arn, "Tags": self.tags(),
                "PrimaryContainer": {"Image": self.image.uri, "ModelDataUrl": self.artifact_uri,
                                     "Environment": self.image.environment}}

    def endpoint_config_request(self) -> dict[str, Any]:
        return {"EndpointConfigName": self.name, "Tags": self.tags(),
                "ProductionVariants": [{"VariantName": VARIANT, "ModelName": self.name,
                                        "ServerlessConfig": self.serverless.request()}]}

    def endpoint_request(self) -> dict[str, Any]:
        return {"EndpointName": self.endpoint, "EndpointConfigName": self.name,
                "Tags": [{"Key": "Endpoint", "Value": self.endpoint}]}


def artifact_location(bucket: str, prefix: str, model_version: str, runtime: str = ONNX_INT8) -> tuple[str, str]:
    """One tarball per version and runtime: a Model of another image never finds its artifact replaced."""
    key = f"{prefix.strip('/')}/{model_version}/model-{runtime}.tar.gz"
    return key, f"s3://{bucket}/{key}"


def baseline_key(artifact_key: str) -> str:
    """The drift baseline's key: beside the version's model.tar.gz, where the drift job looks for it."""
    return f"{artifact_key.rsplit('/', 1)[0]}/{DRIFT_BASELINE_FILE}"


def check_runtime(model_dir: Path, image: ServingImage) -> None:
    """The model folder must hold the model files the image serves."""
    if image.runtime not in read_metadata(model_dir).get("runtimes", {}):
        raise ReleaseError(f"{model_dir} has no {image.runtime} model for the {image.kind} image; run "
                           f"`make export-onnx MODEL_DIR={model_dir}`")
