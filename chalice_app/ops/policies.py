"""The IAM policies of an AWS stage's Lambda functions, built from the stage's settings in .chalice/config.json
and the account and region it is deployed to.

    python -m chalice_app.ops.policies --stage dev [--region R] [--account A] [--dry-run]

Plain IAM JSON, written into .chalice/ (git-ignored) where `chalice deploy` and `chalice package` read them; `make
deploy` writes them itself before either, for the account of its credentials and its region. Every ARN names that
account and region, so a policy never matches a same-named resource in another account; each function may do what
its code does and no more (docs/aws-deployment.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import boto3

from chalice_app.chalicelib.transactions import (
    CLIENT_INDEX,
    DAY_INDEX,
    FEEDBACK_ATTRIBUTES,
    REVIEW_INDEX,
    TransactionRecord,
)
from chalice_app.ops.exit_codes import exit_code
from devkit.stages import (
    CONFIG_FILE,
    DRIFT_HANDLER,
    INVOKE_ENDPOINT,
    baseline_location,
    function_environment,
    function_name,
    model_variants,
    read_config,
    stage_environment,
)

PARTITION = "aws"
TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem"]
FEEDBACK_ACTION = "dynamodb:UpdateItem"
INDEX_ACTIONS = "dynamodb:Query"
LOG_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
BASELINE_ACTION = "s3:GetObject"
VERSION = "2012-10-17"


ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")


class Place(NamedTuple):
    """The AWS account and region a stage is deployed to: every ARN of its policies names both."""

    account: str
    region: str

    def check(self) -> Place:
        if not ACCOUNT_ID.match(self.account):
            raise ValueError(f"account {self.account!r}: an AWS account id is 12 digits")
        if not REGION.match(self.region):
            raise ValueError(f"region {self.region!r} is not an AWS region name (e.g. eu-west-1)")
        return self


def arn(service: str, resource: str, place: Place) -> str:
    return f"arn:{PARTITION}:{service}:{place.region}:{place.account}:{resource}"


def table_arn(table: str, place: Place) -> str:
    return arn("dynamodb", f"table/{table}", place)


def index_arn(table: str, place: Place, index: str = DAY_INDEX) -> str:
    return f"{table_arn(table, place)}/index/{index}"


def endpoint_arn(endpoint: str, place: Place) -> str:
    return arn("sagemaker", f"endpoint/{endpoint.lower()}", place)  # SageMaker ARNs carry names in lower case


def log_streams_arn(function: str, place: Place) -> str:
    return arn("logs", f"log-group:/aws/lambda/{function}:*", place)


def statement(sid: str, actions: str | list[str], resource: str | list[str],
              condition: dict[str, Any] | None = None) -> dict[str, Any]:
    document = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}
    return {**document, "Condition": condition} if condition else document


def feedback_condition() -> dict[str, Any]:
    """UpdateItem as AWS's fine-grained access pattern allows it: it may name the key and the feedback attributes
    only; `Null` false makes it name some (ForAllValues alone is true for a request that names none); and it may
    ask for nothing back (ReturnValues NONE, where AWS's pattern also allows UPDATED_*), so no write reads the
    attributes it may not change (ALL_OLD and ALL_NEW return the whole item)."""
    key = TransactionRecord.request_id.attr_name
    return {"ForAllValues:StringEquals": {"dynamodb:Attributes": [key, *FEEDBACK_ATTRIBUTES]},
            "Null": {"dynamodb:Attributes": "false"},
            "StringEquals": {"dynamodb:ReturnValues": "NONE"}}


def api_policy(stage: str, place: Place, config_file: Path = CONFIG_FILE) -> dict[str, Any]:
    environment = stage_environment(stage, config_file)
    endpoints = sorted({environment["ENDPOINT_NAME"], *model_variants(stage, config_file)})
    invoke = [endpoint_arn(name, place) for name in endpoints]
    table = environment["TABLE_NAME"]
    return {"Version": VERSION, "Statement": [
        statement("InvokeTheStageEndpoints", INVOKE_ENDPOINT, invoke[0] if len(invoke) == 1 else invoke),
        statement("ReadAndWriteTransactions", TABLE_ACTIONS, table_arn(table, place)),
        statement("WriteFeedbackOnly", FEEDBACK_ACTION, table_arn(table, place), feedback_condition()),
        statement("QueryRecentTransactionsByDayAndClient", INDEX_ACTIONS,
                  [index_arn(table, place), index_arn(table, place, CLIENT_INDEX)]),
        statement("QueryTheReviewQueue", INDEX_ACTIONS, index_arn(table, place, REVIEW_INDEX)),
        statement("WriteOwnLogs", LOG_ACTIONS, log_streams_arn(function_name(stage, config_file=config_file), place)),
    ]}


def drift_policy(stage: str, place: Place, config_file: Path = CONFIG_FILE) -> dict[str, Any]:
    bucket, prefix = baseline_location(stage, config_file)
    table = function_environment(stage, DRIFT_HANDLER, config_file)["TABLE_NAME"]
    return {"Version": VERSION, "Statement": [
        statement("QueryTransactionWindowsByDay", INDEX_ACTIONS, index_arn(table, place)),
        statement("ReadTheDriftBaselineOfEachModelVersion", BASELINE_ACTION,  # S3 ARNs name no account or region
                  f"arn:{PARTITION}:s3:::{bucket}/{prefix}/*/drift_baseline.json"),
        statement("WriteOwnLogs", LOG_ACTIONS,
                  log_streams_arn(function_name(stage, DRIFT_HANDLER, config_file=config_file), place)),
    ]}


def aws_stages(config_file: Path = CONFIG_FILE) -> list[str]:
    """The stages with hand-written policies: the ones deployed to AWS."""
    return [name for name, stage in read_config(config_file)["stages"].items() if "iam_policy_file" in stage]


def documents(stage: str, place: Place, config_file: Path = CONFIG_FILE) -> dict[str, dict[str, Any]]:
    """Each policy file the stage names (relative to .chalice/), with the document it must hold."""
    stage_section = read_config(config_file)["stages"][stage]
    files = {stage_section["iam_policy_file"]: api_policy(stage, place, config_file)}
    drift_file = stage_section.get("lambda_functions", {}).get(DRIFT_HANDLER, {}).get("iam_policy_file")
    if drift_file:
        files[drift_file] = drift_policy(stage, place, config_file)
    return files


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def write(stage: str, place: Place, config_file: Path = CONFIG_FILE, chalice_dir: Path | None = None) -> list[Path]:
    """Write the stage's policy files for `place` into `chalice_dir` (the project's .chalice/ unless given), where
    Chalice reads them; the files written. A stage without hand-written policies (local) has none."""
    if stage not in aws_stages(config_file):
        return []
    folder = chalice_dir or config_file.parent
    written = []
    for name, document in documents(stage, place.check(), config_file).items():
        (folder / name).write_text(render(document))
        written.append(folder / name)
    return written


def caller_account(region: str) -> str:
    """The account of the credentials in use: the one `chalice deploy` would deploy into."""
    return boto3.Session(region_name=region).client("sts").get_caller_identity()["Account"]


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, help="a stage with hand-written policies: dev or prod")
    parser.add_argument("--region", default=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--account", help="the 12-digit account id (default: the credentials', through STS)")
    parser.add_argument("--dry-run", action="store_true", help="print the documents instead of writing them")
    args = parser.parse_args(argv)
    return exit_code("policies", lambda: run(args), (ValueError,))


def run(args: argparse.Namespace) -> None:
    if args.stage not in aws_stages():
        raise ValueError(f"stage {args.stage!r} has no hand-written policies; stages that do: "
                         f"{', '.join(aws_stages())}")
    if not args.region:
        raise ValueError("pass --region or set AWS_REGION")
    place = Place(args.account or caller_account(args.region), args.region).check()
    if args.dry_run:
        for name, document in documents(args.stage, place).items():
            print(f"# {name}\n{render(document)}", end="")
        return
    for path in write(args.stage, place):
        print(f"wrote {path} (account {place.account}, region {place.region})")


if __name__ == "__main__":
    sys.exit(main())
