"""moto in server mode with what `chalice deploy` and the infra stack need and moto 5.2.5 lacks.

    python -m tests.support.moto_aws --port 5000    # by hand: then AWS_ENDPOINT_URL=http://127.0.0.1:5000

moto imports REST APIs from OpenAPI 3 documents only (AWS also takes Chalice's Swagger 2.0, failing otherwise
with "Only OpenAPI 3.x.x are currently supported"), requires `info.description`, and ignores each operation's
`security`; its CloudFormation skips AWS::ApiGateway::ApiKey, UsagePlan and UsagePlanKey, and a stack made by
a change set has no outputs. Here the Swagger document Chalice sends is imported through moto's own code path,
each operation that AWS would mark apiKeyRequired (security `api_key`) is marked so, those three resource types
are created in moto's API Gateway backend, as AWS would, and an executed change set leaves the stack with its
outputs. SageMaker's UpdateEndpoint, which moto lacks, switches the endpoint to the new config at once (as moto
creates endpoints InService at once). Everything else is moto's own (IAM policy syntax checks included).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from moto.apigateway.models import APIGatewayBackend, apigateway_backends
from moto.cloudformation import parsing
from moto.cloudformation.models import CloudFormationBackend
from moto.core.common_models import CloudFormationModel
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.server import ThreadedMotoServer

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch"}
_moto_import_rest_api = APIGatewayBackend.import_rest_api
_moto_put_rest_api = APIGatewayBackend.put_rest_api
_moto_execute_change_set = CloudFormationBackend.execute_change_set


def _as_openapi3(document: dict[str, Any]) -> dict[str, Any]:
    """The paths and operations (with their integrations) in the shape moto's importer reads."""
    return {"openapi": "3.0.1", "info": {"description": "", **document.get("info", {})},
            "paths": {path: {method: operation for method, operation in item.items() if method in HTTP_METHODS}
                      for path, item in document.get("paths", {}).items()}}


def _require_keys(backend: APIGatewayBackend, api_id: str, document: dict[str, Any]) -> None:
    api = backend.get_rest_api(api_id)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS and any("api_key" in entry for entry in operation.get("security", [])):
                api.get_resource_for_path(path).resource_methods[method.upper()].api_key_required = True


def _import_rest_api(self: APIGatewayBackend, api_doc: dict[str, Any], fail_on_warnings: bool) -> Any:
    api = _moto_import_rest_api(self, _as_openapi3(api_doc), False)
    _require_keys(self, api.id, api_doc)
    return api


def _put_rest_api(self: APIGatewayBackend, function_id: str, api_doc: dict[str, Any], fail_on_warnings: bool,
                  mode: str = "merge") -> Any:
    api = _moto_put_rest_api(self, function_id, _as_openapi3(api_doc), False, mode)
    _require_keys(self, function_id, api_doc)
    return api


MOTO_MODULE = "moto.apigateway.models"  # moto's model metaclass files each model under its service's module


def _execute_change_set(self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None) -> None:
    """moto's, then the stack's outputs from the template it now has (moto leaves them empty)."""
    _moto_execute_change_set(self, change_set_name, stack_name)
    change_set = self.change_sets.get(change_set_name) or next(
        cs for cs in self.change_sets.values() if cs.change_set_name == change_set_name)
    stack = self.stacks[change_set.stack_id]
    stack._parse_template()
    stack.output_map = stack._create_output_map()


def _update_endpoint(self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str) -> FakeEndpoint:
    """The endpoint on the new config's variants; SageMaker's errors for an unknown endpoint or config."""
    config = self.describe_endpoint_config(endpoint_config_name)
    try:
        endpoint = self.endpoints[endpoint_name]
    except KeyError:
        arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.") from None
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.last_modified_time = utcnow()
    return endpoint


def _update_endpoint_action(self: SageMakerResponse) -> ActionResult:
    endpoint = _update_endpoint(self.sagemaker_backend, self._get_param("EndpointName"),
                                self._get_param("EndpointConfigName"))
    return ActionResult({"EndpointArn": endpoint.arn})


class _ApiGatewayResource:
    """An API Gateway object created by CloudFormation; Ref gives its id. (A mixin: moto lists the models among
    CloudFormationModel's direct subclasses only.)"""

    def __init__(self, resource_id: str) -> None:
        self.resource_id = resource_id

    @property
    def physical_resource_id(self) -> str:
        return self.resource_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> Any:
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        pass


class _CfnApiKey(_ApiGatewayResource, CloudFormationModel):
    __module__ = MOTO_MODULE

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApiGateway::ApiKey"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        key = apigateway_backends[account_id][region_name].create_api_key(
            {"name": properties.get("Name", resource_name), "description": properties.get("Description"),
             "enabled": bool(properties.get("Enabled", False))})
        return cls(key.id)


class _CfnUsagePlan(_ApiGatewayResource, CloudFormationModel):
    __module__ = MOTO_MODULE

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApiGateway::UsagePlan"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        plan = apigateway_backends[account_id][region_name].create_usage_plan(
            {"name": properties.get("UsagePlanName", resource_name), "description": properties.get("Description"),
             "apiStages": [{"apiId": s["ApiId"], "stage": s["Stage"]} for s in properties.get("ApiStages", [])],
             "throttle": {"rateLimit": float(properties["Throttle"]["RateLimit"]),
                          "burstLimit": int(properties["Throttle"]["BurstLimit"])}
             if "Throttle" in properties else None,
             "quota": {"limit": int(properties["Quota"]["Limit"]), "period": properties["Quota"]["Period"]}
             if "Quota" in properties else None})
        return cls(plan.id)


class _CfnUsagePlanKey(_ApiGatewayResource, CloudFormationModel):
    __module__ = MOTO_MODULE

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApiGateway::UsagePlanKey"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        key = apigateway_backends[account_id][region_name].create_usage_plan_key(
            properties["UsagePlanId"], {"keyId": properties["KeyId"], "keyType": properties["KeyType"]})
        return cls(key.id)


def install() -> None:
    """Patch this process's moto (idempotent): the server below, or a ThreadedMotoServer started here."""
    APIGatewayBackend.import_rest_api = _import_rest_api  # type: ignore[method-assign]
    APIGatewayBackend.put_rest_api = _put_rest_api  # type: ignore[method-assign]
    CloudFormationBackend.execute_change_set = _execute_change_set  # type: ignore[method-assign]
    SageMakerResponse.update_endpoint = _update_endpoint_action  # type: ignore[attr-defined]
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()  # the model list is read once, from CloudFormationModel's subclasses


def start(port: int = 0, host: str = "127.0.0.1") -> ThreadedMotoServer:
    install()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    server = start(args.port, args.host)
    host, port = server.get_host_and_port()
    print(f"moto at http://{host}:{port} (Ctrl-C stops it); use fake credentials and AWS_ENDPOINT_URL", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
