"""The API's code onto AWS, one of two ways: `chalice deploy` in the project, or `chalice package` and the API's own
CloudFormation stack (`--via cloudformation`, for teams that deploy through CloudFormation). Either way the result is
the REST API's id and URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from chalice_app.ops import policies
from chalice_app.ops.aws_stage import DeployError, Stage
from chalice_app.ops.cloudformation import deploy_calls, deploy_stack
from chalice_app.ops.infra import Clients
from chalice_app.ops.policies import Place
from devkit.plan import Call, Step
from devkit.stages import CHALICE_DIR, DEPLOYED_DIR, function_name

CHALICE_BIN = Path(sys.executable).with_name("chalice")
MERGE_TEMPLATE = Path("infra") / "function-names.yaml"
PACKAGE_PREFIX = "news-classifier/api"
VIA = ("chalice", "cloudformation")
Runner = Callable[[Sequence[str], Path, dict[str, str] | None], None]


def run_command(command: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    if subprocess.run(list(command), cwd=cwd, env=env).returncode != 0:
        raise DeployError(f"`{shlex.join(command)}` failed (in {cwd})")


def chalice_deploy_command(stage: Stage) -> list[str]:
    return [str(CHALICE_BIN), "deploy", "--stage", stage.name]


def chalice_environment(region: str) -> dict[str, str]:
    """PIP_NO_DEPS: requirements.txt lists the whole closure minus what the Lambda runtime has (boto3, botocore)."""
    return {**os.environ, "PIP_NO_DEPS": "1", "AWS_DEFAULT_REGION": region}


def clear_package_cache(project: Path) -> None:
    """Chalice reuses a zip from .chalice/deployments keyed without pip's options: one built with botocore would
    be shipped again."""
    shutil.rmtree(project / ".chalice" / "deployments", ignore_errors=True)


def deploy_with_chalice(stage: Stage, region: str, run: Runner, project: Path = CHALICE_DIR) -> tuple[str, str]:
    """`chalice deploy` in the project; the REST API's id and URL from .chalice/deployed/<stage>.json."""
    clear_package_cache(project)
    run(chalice_deploy_command(stage), project, chalice_environment(region))
    return deployed_rest_api(stage.name, project / ".chalice" / "deployed")


def deployed_rest_api(stage: str, deployed_dir: Path = DEPLOYED_DIR) -> tuple[str, str]:
    path = deployed_dir / f"{stage}.json"
    try:
        resources = json.loads(path.read_text())["resources"]
        (api,) = [r for r in resources if r.get("resource_type") == "rest_api"]
        return api["rest_api_id"], api["rest_api_url"]
    except (OSError, ValueError, KeyError) as exc:
        raise DeployError(f"{path}: no REST API recorded by chalice deploy ({exc})") from exc


def package_command(stage: Stage, out_dir: Path) -> list[str]:
    return [str(CHALICE_BIN), "package", "--stage", stage.name, "--merge-template", str(MERGE_TEMPLATE),
            str(out_dir)]


def package_api(stage: Stage, out_dir: Path, region: str, run: Runner = run_command,
                source: Path = CHALICE_DIR) -> Path:
    """`chalice package` from a clean copy of the project `source`; returns the merged template (sam.yaml)."""
    with tempfile.TemporaryDirectory(prefix="chalice-build-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(source, project, ignore=shutil.ignore_patterns(
            "deployments", "deployed", "venv", "__pycache__", "ops", "local", "reports"))
        run(package_command(stage, out_dir.resolve()), project, chalice_environment(region))
    return out_dir / "sam.yaml"


def template_url(bucket: str, region: str, key: str) -> str:
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def upload_package(s3: Any, package_dir: Path, bucket: str, region: str, stage: Stage) -> str:
    """Upload the zip under its content digest, point every function's CodeUri at it, upload the template;
    return its URL."""
    archive = package_dir / "deployment.zip"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    code_key = f"{PACKAGE_PREFIX}/{stage.name}/{digest}.zip"
    s3.upload_file(str(archive), bucket, code_key)
    template = yaml.safe_load((package_dir / "sam.yaml").read_text())
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": code_key}
    template_key = f"{PACKAGE_PREFIX}/{stage.name}/{digest}.template.json"
    s3.put_object(Bucket=bucket, Key=template_key, Body=json.dumps(template).encode())
    return template_url(bucket, region, template_key)


def deploy_with_cloudformation(stage: Stage, region: str, s3: Any, cfn: Any, run: Runner,
                               poll_seconds: float, project: Path = CHALICE_DIR) -> tuple[str, str]:
    """`chalice package`, uploads, the API stack's change set; the REST API's id and URL from its outputs."""
    bucket, _ = stage.artifacts
    with tempfile.TemporaryDirectory(prefix="chalice-package-") as out:
        template = package_api(stage, Path(out) / "package", region, run, project)
        url = upload_package(s3, template.parent, bucket, region, stage)
    change_set = f"{stage.stack_name}-{url.rsplit('/', 1)[1].split('.')[0]}"  # named by the package digest
    outputs = deploy_stack(cfn, stage.stack_name, {"TemplateURL": url}, {"FunctionName": function_name(stage.name)},
                           change_set, poll_seconds)
    return outputs["RestAPIId"], outputs["EndpointURL"]


def policies_step(stage: Stage, region: str, project: Path) -> Step[Clients]:
    """The stage's Lambda policies written into the project for the account of the credentials and `region`,
    before Chalice reads them; the result is the files written."""
    files = ", ".join(policies.documents(stage.name, Place("<Account>", region)))
    return Step("policies", [Call("sts", "get_caller_identity", {},
                                  f"then {project.name}/.chalice/ {files}: every ARN in that Account and {region}")],
                lambda clients, _: policies.write(stage.name, Place(clients.sts.get_caller_identity()["Account"],
                                                                    region), project / ".chalice" / "config.json"),
                title=f"policies: python -m chalice_app.ops.policies --stage {stage.name} --region {region}")


def api_step(stage: Stage, region: str, via: str, project: Path, run: Runner,
             poll_seconds: float) -> Step[Clients]:
    """The API's code onto AWS `via` chalice or cloudformation, as a step; its result is the REST API's id and URL."""
    if via == "chalice":
        return Step("api", [Call("chalice", "deploy", shlex.join(chalice_deploy_command(stage)),
                                 f"in {project.name}/ with PIP_NO_DEPS=1 (its zip cache cleared); the REST API id and "
                                 f"URL from .chalice/deployed/{stage.name}.json")],
                    lambda _, __: deploy_with_chalice(stage, region, run, project))
    bucket, _ = stage.artifacts
    key = f"{PACKAGE_PREFIX}/{stage.name}/<sha256 of deployment.zip>"
    url = template_url(bucket, region, f"{key}.template.json")
    return Step("api", [
        Call("chalice", "package", shlex.join(package_command(stage, Path("<tmp>/package"))),
             f"in a clean copy of {CHALICE_DIR.name}/ with PIP_NO_DEPS=1"),
        Call("s3", "upload_file", {"Filename": "deployment.zip", "Bucket": bucket, "Key": f"{key}.zip"}),
        Call("s3", "put_object", {"Bucket": bucket, "Key": f"{key}.template.json"},
             "sam.yaml as JSON, every function's CodeUri on that key"),
        *deploy_calls(stage.stack_name, {"TemplateURL": url}, {"FunctionName": function_name(stage.name)},
                      f"{stage.stack_name}-<sha256 of deployment.zip>"),
    ], lambda clients, _: deploy_with_cloudformation(stage, region, clients.s3, clients.cloudformation, run,
                                                     poll_seconds, project))
