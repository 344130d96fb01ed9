"""CloudFormation stacks through change sets: create or update, wait, read the outputs; delete. Used by the infra
stack (ops/infra.py) and by the API's CloudFormation path (ops/deploy.py --via cloudformation)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, WaiterError

from devkit.plan import Call

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]  # roles; SAM's transform
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
TAGS = [{"Key": "project", "Value": "news-classifier"}]


class StackError(RuntimeError):
    """A stack did not deploy or delete; the message says which and why."""


def described_stack(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    """The stack's description (status and outputs); None when there is none (or only a change set that was never
    executed)."""
    try:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return None
        raise
    return None if stack["StackStatus"] == "REVIEW_IN_PROGRESS" else stack


def change_set_request(stack_name: str, template: dict[str, str], parameters: dict[str, str], exists: bool,
                       change_set_name: str) -> dict[str, Any]:
    """`template`: {"TemplateBody": text} or {"TemplateURL": url}."""
    return {"StackName": stack_name, "ChangeSetName": change_set_name, **template,
            "ChangeSetType": "UPDATE" if exists else "CREATE", "Capabilities": CAPABILITIES,
            "Parameters": [{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
            "Tags": TAGS}


def outputs_of(stack: dict[str, Any]) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    return outputs_of(cfn.describe_stacks(StackName=stack_name)["Stacks"][0])


def deploy_stack(cfn: Any, stack_name: str, template: dict[str, str], parameters: dict[str, str],
                 change_set_name: str, poll_seconds: float = 10) -> dict[str, str]:
    """Create or update the stack through a change set; return its outputs. No changes is not an error."""
    exists = described_stack(cfn, stack_name) is not None
    cfn.create_change_set(**change_set_request(stack_name, template, parameters, exists, change_set_name))
    waiter_config = {"Delay": poll_seconds, "MaxAttempts": 360}
    try:
        cfn.get_waiter("change_set_create_complete").wait(StackName=stack_name, ChangeSetName=change_set_name,
                                                          WaiterConfig=waiter_config)
    except WaiterError as exc:
        reason = cfn.describe_change_set(StackName=stack_name, ChangeSetName=change_set_name).get("StatusReason", "")
        if not any(marker in reason for marker in NO_CHANGES):
            raise StackError(f"change set {change_set_name} of {stack_name} failed: {reason or exc}") from exc
        cfn.delete_change_set(StackName=stack_name, ChangeSetName=change_set_name)
    else:
        cfn.execute_change_set(StackName=stack_name, ChangeSetName=change_set_name)
        waiter = "stack_update_complete" if exists else "stack_create_complete"
        try:
            cfn.get_waiter(waiter).wait(StackName=stack_name, WaiterConfig=waiter_config)
        except WaiterError as exc:
            raise StackError(f"stack {stack_name} did not deploy ({exc}); see its events in the console") from exc
    return outputs(cfn, stack_name)


def deploy_calls(stack_name: str, template: dict[str, str], parameters: dict[str, str],
                 change_set_name: str) -> list[Call]:
    """The calls of `deploy_stack`, with its change set request as it would create the stack."""
    names = {"StackName": stack_name, "ChangeSetName": change_set_name}
    return [
        Call("cloudformation", "describe_stacks", {"StackName": stack_name}, "(ChangeSetType UPDATE if it exists)"),
        Call("cloudformation", "create_change_set",
             change_set_request(stack_name, template, parameters, False, change_set_name)),
        Call("cloudformation", "describe_change_set", names, "until CREATE_COMPLETE"),
        Call("cloudformation", "execute_change_set", names, "if it has changes"),
        Call("cloudformation", "delete_change_set", names, "if it has none"),
        Call("cloudformation", "describe_stacks", {"StackName": stack_name},
             "until CREATE_COMPLETE or UPDATE_COMPLETE; read the outputs"),
    ]


def delete_stack(cfn: Any, stack_name: str, poll_seconds: float = 10) -> None:
    """Delete the stack (which `described_stack` found) and wait until it is gone."""
    cfn.delete_stack(StackName=stack_name)
    try:
        cfn.get_waiter("stack_delete_complete").wait(StackName=stack_name,
                                                     WaiterConfig={"Delay": poll_seconds, "MaxAttempts": 360})
    except WaiterError as exc:
        raise StackError(f"stack {stack_name} was not deleted ({exc}); see its events in the console") from exc
