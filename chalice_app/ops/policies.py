"""The IAM policies of an AWS stage's Lambda functions, built from the stage's settings in .chalice/config.json.

    python -m chalice_app.ops.policies [--write]    # check (exit 1 when a file differs) or rewrite

Generated plain IAM JSON, committed, so `chalice deploy` and `chalice package` read the same files; each function
may do what its code does and no more (docs/aws-deployment.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chalicelib.transactions import CLIENT_INDEX, DAY_INDEX, FEEDBACK_ATTRIBUTES, REVIEW_INDEX, TransactionRecord

from chalice_app.ops.stages import (
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


def arn(service: str, resource: str) -> str:
    """An ARN in any region and account: the name carries the stage."""
    return f"arn:{PARTITION}:{service}:*:*:{resource}"


def table_arn(table: str) -> str:
    return arn("dynamodb", f"table/{table}")


def index_arn(table: str, index: str = DAY_INDEX) -> str:
    return f"{table_arn(table)}/index/{index}"


def endpoint_arn(endpoint: str) -> str:
    return arn("sagemaker", f"endpoint/{endpoint.lower()}")  # SageMaker ARNs carry names in lower case


def log_streams_arn(function: str) -> str:
    return arn("logs", f"log-group:/aws/lambda/{function}:*")


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


def api_policy(stage: str, config_file: Path = CONFIG_FILE) -> dict[str, Any]:
    environment = stage_environment(stage, config_file)
    endpoints = sorted({environment["ENDPOINT_NAME"], *model_variants(stage, config_file)})
    invoke = [endpoint_arn(name) for name in endpoints]
    table = environment["TABLE_NAME"]
    return {"Version": VERSION, "Statement": [
        statement("InvokeTheStageEndpoints", INVOKE_ENDPOINT, invoke[0] if len(invoke) == 1 else invoke),
        statement("ReadAndWriteTransactions", TABLE_ACTIONS, table_arn(table)),
        statement("WriteFeedbackOnly", FEEDBACK_ACTION, table_arn(table), feedback_condition()),
        statement("QueryRecentTransactionsByDayAndClient", INDEX_ACTIONS,
                  [index_arn(table), index_arn(table, CLIENT_INDEX)]),
        statement("QueryTheReviewQueue", INDEX_ACTIONS, index_arn(table, REVIEW_INDEX)),
        statement("WriteOwnLogs", LOG_ACTIONS, log_streams_arn(function_name(stage, config_file=config_file))),
    ]}


def drift_policy(stage: str, config_file: Path = CONFIG_FILE) -> dict[str, Any]:
    bucket, prefix = baseline_location(stage, config_file)
    table = function_environment(stage, DRIFT_HANDLER, config_file)["TABLE_NAME"]
    return {"Version": VERSION, "Statement": [
        statement("QueryTransactionWindowsByDay", INDEX_ACTIONS, index_arn(table)),
        statement("ReadTheDriftBaselineOfEachModelVersion", BASELINE_ACTION,
                  f"arn:{PARTITION}:s3:::{bucket}/{prefix}/*/drift_baseline.json"),
        statement("WriteOwnLogs", LOG_ACTIONS,
                  log_streams_arn(function_name(stage, DRIFT_HANDLER, config_file=config_file))),
    ]}


def aws_stages(config_file: Path = CONFIG_FILE) -> list[str]:
    """The stages with hand-written policies: the ones deployed to AWS."""
    return [name for name, stage in read_config(config_file)["stages"].items() if "iam_policy_file" in stage]


def documents(stage: str, config_file: Path = CONFIG_FILE) -> dict[Path, dict[str, Any]]:
    """Each policy file the stage names, with the document it must hold."""
    stage_section = read_config(config_file)["stages"][stage]
    files = {config_file.parent / stage_section["iam_policy_file"]: api_policy(stage, config_file)}
    drift_file = stage_section.get("lambda_functions", {}).get(DRIFT_HANDLER, {}).get("iam_policy_file")
    if drift_file:
        files[config_file.parent / drift_file] = drift_policy(stage, config_file)
    return files


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def write(stage: str, config_file: Path = CONFIG_FILE) -> list[Path]:
    """Rewrite the stage's policy files (nothing for a stage without them); returns the files changed."""
    if stage not in aws_stages(config_file):
        return []
    changed = []
    for path, document in documents(stage, config_file).items():
        if not path.is_file() or path.read_text() != render(document):
            path.write_text(render(document))
            changed.append(path)
    return changed


def stale(config_file: Path = CONFIG_FILE) -> list[Path]:
    """The policy files that differ from what their stage's settings make."""
    return [path for stage in aws_stages(config_file) for path, document in documents(stage, config_file).items()
            if not path.is_file() or path.read_text() != render(document)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the files that differ")
    args = parser.parse_args(argv)
    if args.write:
        for stage in aws_stages():
            for path in write(stage):
                print(f"wrote {path}")
        return 0
    differing = stale()
    for path in differing:
        print(f"{path} differs from its stage's settings: python -m chalice_app.ops.policies --write",
              file=sys.stderr)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
