"""The stage's infra stack (chalice_app/infra/stack.yaml) as CloudFormation creates it, on moto's server: what the
other tests take for granted about its resources."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from chalice_app.ops import infra

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS.{2}CloudWatch.{2}Alarm")  # moto's CloudFormation


def manifest(layer: str) -> str:
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "layers": [{"digest": f"sha256:{layer * 64}"}]})


def test_no_push_can_move_a_tag_of_the_serving_image_repository(moto_url: str, aws_credentials: None) -> None:
    session = boto3.Session(region_name="us-east-1")
    infra.deploy(session.client("cloudformation", endpoint_url=moto_url), "dev", poll_seconds=0.1)
    ecr, name = session.client("ecr", endpoint_url=moto_url), infra.repository_name("dev")
    (repository,) = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert repository["imageTagMutability"] == "IMMUTABLE"

    first = ecr.put_image(repositoryName=name, imageTag="serve-1", imageManifest=manifest("1"))["image"]["imageId"]
    with pytest.raises(ClientError) as refused:
        ecr.put_image(repositoryName=name, imageTag="serve-1", imageManifest=manifest("2"))
    # AWS answers ImageTagAlreadyExistsException; moto names it ImageAlreadyExistsException
    assert refused.value.response["Error"]["Code"] in {"ImageTagAlreadyExistsException", "ImageAlreadyExistsException"}
    (tagged,) = ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "serve-1"}])["imageDetails"]
    assert tagged["imageDigest"] == first["imageDigest"]
