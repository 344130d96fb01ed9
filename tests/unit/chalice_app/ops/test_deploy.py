"""`make deploy`'s chain (chalice_app/ops/deploy.py): infra stack, endpoint, `chalice deploy`, usage plan binding,
smoke test, in that order, against moto's server (with tests/support/moto_aws.py), commands recorded instead of run; the
CloudFormation path's uploads on moto with its change set through botocore's Stubber (moto has no SAM transform);
and a dry run that needs no credentials."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chalice_app.ops import deploy as chain
from chalice_app.ops import infra
from chalice_app.ops.api_gateway import bind_usage_plan, keyless_test, smoke_test
from chalice_app.ops.aws_stage import DeployError, Stage
from chalice_app.ops.chalice_deploy import clear_package_cache
from chalice_app.ops.cloudformation import CAPABILITIES
from chalice_app.ops.deploy import Options, main
from chalice_app.ops.infra import Clients
from devkit.stages import CONFIG_FILE
from tests.support.aws_stages import drift_policy, policy
from tests.support.recorded_calls import (
    CallLog,
    assert_all_made,
    assert_printed,
    command_call,
    printed_calls,
    recorded_calls,
    run_then_dry_run,
)

STACK = "news-classifier-api-dev"
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS.{2}CloudWatch.{2}Alarm")  # moto's CloudFormation


def rest_api_with_stage(apigateway: Any) -> str:
    """A REST API deployed to the `dev` stage, as `chalice deploy` leaves it; returns its id."""
    api_id = apigateway.create_rest_api(name="news-classifier-api")["id"]
    root = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
    apigateway.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigateway.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    apigateway.create_deployment(restApiId=api_id, stageName="dev")
    return api_id


class Recorder:
    """Records each command (command, cwd, env) in order, and in `log` as the call a dry run names. `chalice deploy`
    creates a REST API on moto and records it in .chalice/deployed/<stage>.json as Chalice does; `chalice package`
    writes a stand-in zip and template."""

    def __init__(self, apigateway: Any = None, log: CallLog | None = None) -> None:
        self.apigateway, self.log = apigateway, log if log is not None else CallLog()
        self.calls: list[tuple[list[str], Path, dict[str, str] | None]] = []

    def __call__(self, command: Sequence[str], cwd: Path, env: dict[str, str] | None) -> None:
        self.calls.append((list(command), cwd, env))
        self.log.append(command_call(command))
        if "deploy" in command and "--stage" in command and "model.tools.deploy_endpoint" not in command:
            with self.log.paused():
                api = {"id": rest_api_with_stage(self.apigateway)}
            deployed = cwd / ".chalice" / "deployed"
            deployed.mkdir(parents=True, exist_ok=True)
            (deployed / "dev.json").write_text(json.dumps({"resources": [
                {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": api["id"],
                 "rest_api_url": f"https://{api['id']}.execute-api.us-east-1.amazonaws.com/dev/"}]}))
        if "package" in command:
            out = Path(command[-1])
            out.mkdir(parents=True)
            (out / "deployment.zip").write_bytes(b"zip bytes")
            (out / "sam.yaml").write_text(
                "Resources:\n"
                "  APIHandler: {Type: AWS::Serverless::Function, Properties: {CodeUri: ./deployment.zip}}\n"
                "  MonitorDrift: {Type: AWS::Serverless::Function, Properties: {CodeUri: ./deployment.zip}}\n"
                "  RestAPI: {Type: AWS::Serverless::Api, Properties: {}}\n")


class FakeApi:
    """The deployed API as the smoke tests see it; answers 403 to /classify `refusals` times (binding delay), and
    to a data request without a key unless the stage is `open`. Each request also goes to `log` as the call a dry
    run names."""

    def __init__(self, refusals: int = 0, log: CallLog | None = None, open: bool = False) -> None:
        self.refusals, self.log, self.open = refusals, log if log is not None else CallLog(), open
        self.requests: list[tuple[str, bytes | None, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        self.requests.append((url, body, headers))
        self.log.append(("http", "GET" if body is None else "POST"))
        if url.endswith("/health"):
            return 200, {"status": "ok"}
        if "x-api-key" not in headers and not self.open:
            return 403, {"message": "Forbidden"}
        if self.refusals:
            self.refusals -= 1
            return 403, {"message": "Forbidden"}
        return 200, {"label": "Business", "model_version": "news-1", "request_id": "r1"}


def moto_clients(moto_url: str) -> Clients:
    session = boto3.Session(region_name="us-east-1")
    return Clients(*(session.client(name, endpoint_url=moto_url)
                     for name in ("cloudformation", "apigateway", "s3", "sts")))


def options(tmp_path: Path, model_dir: Path | None = None, **overrides: Any) -> Options:
    project = tmp_path / "chalice_app"
    (project / ".chalice" / "deployments").mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIG_FILE, project / ".chalice" / "config.json")  # the project deployed: its policies come from it
    return Options(Stage.load("dev"), model_dir or tmp_path, "us-east-1", ["--memory", "2048"], poll_seconds=0,
                   project=project, **overrides)


def test_chain_runs_infra_endpoint_chalice_deploy_binding_then_smoke_test(moto_url: str, aws_credentials: None,
                                                                         tmp_path: Path) -> None:
    clients = moto_clients(moto_url)
    run, api = Recorder(clients.apigateway), FakeApi(refusals=1)
    stale_zip = tmp_path / "chalice_app" / ".chalice" / "deployments" / "old-with-botocore.zip"
    opts = options(tmp_path)
    stale_zip.write_bytes(b"18 MB")
    printed = chain.deploy(opts, clients, run, api, smoke_timeout_s=30)

    outputs = {o["OutputKey"]: o["OutputValue"] for o in clients.cloudformation.describe_stacks(
        StackName=infra.stack_name("dev"))["Stacks"][0]["Outputs"]}
    (endpoint, _, endpoint_env), (chalice, cwd, chalice_env) = run.calls
    assert endpoint[1:] == ["-m", "model.tools.deploy_endpoint", "deploy", "--model-dir", str(tmp_path.resolve()),
                            "--endpoint", "news-classifier-dev", "--bucket", "news-classifier-artifacts-dev",
                            "--prefix", "news-classifier/models", "--region", "us-east-1", "--memory", "2048"]
    assert endpoint_env is not None and endpoint_env["ECR_REPOSITORY"] == outputs["RepositoryUri"]
    assert chalice[1:] == ["deploy", "--stage", "dev"] and cwd == opts.project
    assert chalice_env is not None and chalice_env["PIP_NO_DEPS"] == "1"
    assert not stale_zip.exists()  # Chalice would have shipped its cached zip again
    # The functions' policies, written where `chalice deploy` reads them, for the credentials' account (moto's).
    chalice_dir = opts.project / ".chalice"
    assert json.loads((chalice_dir / "policy-dev.json").read_text()) == policy("dev")
    assert json.loads((chalice_dir / "policy-drift-dev.json").read_text()) == drift_policy("dev")

    rest_api_id = json.loads((opts.project / ".chalice" / "deployed" / "dev.json").read_text())[
        "resources"][0]["rest_api_id"]
    plan = clients.apigateway.get_usage_plan(usagePlanId=outputs["UsagePlanId"])
    assert [(s["apiId"], s["stage"]) for s in plan["apiStages"]] == [(rest_api_id, "dev")]
    api_stage = clients.apigateway.get_stage(restApiId=rest_api_id, stageName="dev")
    throttle = api_stage["methodSettings"]["*/*"]  # every method, keyed or not
    assert (throttle["throttlingRateLimit"], throttle["throttlingBurstLimit"]) == (
        float(outputs["StageRateLimit"]), int(outputs["StageBurstLimit"]))
    access_log = api_stage["accessLogSettings"]
    assert access_log["destinationArn"] == outputs["ApiAccessLogGroupArn"].removesuffix(":*")
    assert json.loads(access_log["format"])["apiKeyId"] == "$context.identity.apiKeyId"
    key = clients.apigateway.get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)["value"]
    url = f"https://{rest_api_id}.execute-api.us-east-1.amazonaws.com/dev"
    assert [(u, h.get("x-api-key")) for u, _, h in api.requests] == [
        (f"{url}/health", None), (f"{url}/classify", key), (f"{url}/classify", key),
        (f"{url}/classify", None), (f"{url}/transactions", None)]  # the negative smoke test: no key, refused
    assert f"API URL     {url}/" in printed
    assert "no key      POST /classify 403, GET /transactions 403 (refused)" in printed
    assert f"get-api-key --region us-east-1 --include-value --api-key {outputs['ApiKeyId']}" in printed


def test_a_stage_that_serves_data_without_a_key_fails_the_deployment_loudly(moto_url: str, aws_credentials: None,
                                                                           tmp_path: Path) -> None:
    """Whatever opened it (the guard reads the config; this asks the deployed stage), the chain fails after the
    deployment, saying the stage is open and how to take the API down."""
    clients = moto_clients(moto_url)
    with pytest.raises(DeployError, match="THE STAGE IS OPEN: POST /classify without an API key answered 200") as exc:
        chain.deploy(options(tmp_path), clients, Recorder(clients.apigateway), FakeApi(open=True), smoke_timeout_s=30)
    assert f"`chalice delete --stage dev` in {tmp_path / 'chalice_app'}" in str(exc.value)


def test_a_redeploy_keeps_one_binding_and_drops_apis_that_are_gone(moto_url: str, aws_credentials: None) -> None:
    apigateway = moto_clients(moto_url).apigateway
    plan = apigateway.create_usage_plan(name="plan", apiStages=[{"apiId": "gone123456", "stage": "dev"}])["id"]
    live = apigateway.create_rest_api(name="news-classifier-api")["id"]
    assert bind_usage_plan(apigateway, plan, live, "dev") == [
        {"op": "remove", "path": "/apiStages", "value": "gone123456:dev"},
        {"op": "add", "path": "/apiStages", "value": f"{live}:dev"}]
    assert bind_usage_plan(apigateway, plan, live, "dev") == []


def test_smoke_test_fails_clearly_when_the_key_is_never_accepted() -> None:
    with pytest.raises(DeployError, match="POST /classify answered 403"):
        smoke_test("https://api/dev/", "k", FakeApi(refusals=100), timeout_s=5, sleep=lambda s: None)
    with pytest.raises(DeployError, match="without a label"):
        smoke_test("https://api/dev/", "k", lambda url, body, headers: (200, {}), timeout_s=1, sleep=lambda s: None)


class StubApi(BaseHTTPRequestHandler):
    """A deployed stage on loopback: answers every request with the class's `status` (its own JSON body), whatever
    the key."""

    status: ClassVar[int] = 403
    answered: ClassVar[list[tuple[str, str, str | None]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).answered.append((self.command, self.path, self.headers.get("x-api-key")))
        body = json.dumps({"message": "Forbidden"} if self.status == 403 else {"items": []}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub_api() -> Iterator[tuple[str, type[StubApi]]]:
    handler = type("Stub", (StubApi,), {"answered": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dev/", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_negative_smoke_test_passes_a_stage_that_refuses_callers_without_a_key(
        stub_api: tuple[str, type[StubApi]]) -> None:
    url, handler = stub_api
    assert keyless_test(url, "take it down", timeout_s=0) == {"POST /classify": 403, "GET /transactions": 403}
    assert handler.answered == [("POST", "/dev/classify", None), ("GET", "/dev/transactions", None)]
    handler.status = 401
    assert set(keyless_test(url, "take it down", timeout_s=0).values()) == {401}


@pytest.mark.parametrize("status", [200, 400, 404])
def test_the_negative_smoke_test_fails_a_stage_that_serves_callers_without_a_key(
        stub_api: tuple[str, type[StubApi]], status: int) -> None:
    """200 (served), 400 (the API read the body) or 404 (no such route behind the key): none is a refusal."""
    url, handler = stub_api
    handler.status = status
    with pytest.raises(DeployError, match=f"THE STAGE IS OPEN: POST /classify without an API key answered {status}"
                                          ".*Take the API down now: take it down"):
        keyless_test(url, "take it down", timeout_s=0)


def test_the_negative_smoke_test_asks_again_when_the_gateway_has_trouble_then_says_it_could_not_tell(
        stub_api: tuple[str, type[StubApi]]) -> None:
    url, handler = stub_api
    handler.status = 503
    pauses: list[float] = []
    with pytest.raises(DeployError, match=r"POST /classify without an API key answered 503 .* nothing shows"):
        keyless_test(url, "take it down", timeout_s=5, sleep=pauses.append)
    assert pauses == [2.0, 4.0] and len(handler.answered) == 3
    answers = iter([(503, None), (403, {}), (403, {})])
    assert keyless_test(url, "-", lambda *_: next(answers), timeout_s=10, sleep=lambda s: None) == {
        "POST /classify": 403, "GET /transactions": 403}


def deploy_via_cloudformation(moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              log: CallLog) -> tuple[Clients, Recorder, dict[str, str], str]:
    """The chain on the CloudFormation path, the infra stack's outputs given: uploads to moto's S3, the API stack
    through Stubber (moto has no SAM transform), the usage plan on moto. Returns the clients, the commands run, the
    outputs and the REST API's id."""
    clients = moto_clients(moto_url)
    bucket, _ = Stage.load("dev").artifacts
    with log.paused():
        clients.s3.create_bucket(Bucket=bucket)
        outputs = {"UsagePlanId": clients.apigateway.create_usage_plan(name="plan")["id"], "RepositoryUri": "repo",
                   "ApiKeyId": clients.apigateway.create_api_key(name="k", enabled=True)["id"],
                   "TransactionsTableName": "t", "DashboardName": "d", "AlarmTopicArn": "a", "StageRateLimit": "100",
                   "StageBurstLimit": "200",
                   "ApiAccessLogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:g:*"}
        rest_api_id = rest_api_with_stage(clients.apigateway)
    monkeypatch.setattr(infra, "deploy", lambda cfn, stage, poll_seconds: outputs)
    stack_outputs = {"RestAPIId": rest_api_id, "EndpointURL": f"https://{rest_api_id}.example/dev/"}
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(cfn) as stub:
        stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist")
        stub.add_response("create_change_set", {"Id": "cs-arn", "StackId": "stack-arn"},
                          {"StackName": STACK, "ChangeSetName": ANY, "TemplateURL": ANY, "ChangeSetType": "CREATE",
                           "Capabilities": CAPABILITIES, "Parameters": [
                               {"ParameterKey": "FunctionName", "ParameterValue": STACK}], "Tags": ANY})
        stub.add_response("describe_change_set", {"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE"},
                          {"StackName": STACK, "ChangeSetName": ANY})
        stub.add_response("execute_change_set", {}, {"StackName": STACK, "ChangeSetName": ANY})
        description = {"Stacks": [{"StackName": STACK, "StackStatus": "CREATE_COMPLETE", "CreationTime": "2025-01-01",
                                   "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in stack_outputs.items()]}]}
        stub.add_response("describe_stacks", description, {"StackName": STACK})
        stub.add_response("describe_stacks", description, {"StackName": STACK})
        run = Recorder(log=log)
        chain.deploy(options(tmp_path, skip_endpoint=True, via="cloudformation"),
                     Clients(cfn, clients.apigateway, clients.s3, clients.sts), run, FakeApi(log=log))
        stub.assert_no_pending_responses()
    return clients, run, outputs, rest_api_id


def test_cloudformation_path_uploads_the_package_with_every_function_on_it(
        moto_url: str, aws_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clients, run, outputs, rest_api_id = deploy_via_cloudformation(moto_url, tmp_path, monkeypatch, CallLog())
    bucket, _ = Stage.load("dev").artifacts
    ((package, _, env),) = run.calls
    assert package[1:6] == ["package", "--stage", "dev", "--merge-template", "infra/function-names.yaml"]
    assert env is not None and env["PIP_NO_DEPS"] == "1"
    keys = sorted(o["Key"] for o in clients.s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert [k.rsplit(".", 1)[-1] for k in keys] == ["json", "zip"]
    uploaded = json.loads(clients.s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())
    functions = [r for r in uploaded["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    assert [f["Properties"]["CodeUri"] for f in functions] == [{"Bucket": bucket, "Key": keys[1]}] * 2
    plan = clients.apigateway.get_usage_plan(usagePlanId=outputs["UsagePlanId"])
    assert [(s["apiId"], s["stage"]) for s in plan["apiStages"]] == [(rest_api_id, "dev")]


def dry_run_calls(opts: Options, capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str]]:
    """The calls the chain's dry run prints for `opts` (its endpoint step's own dry run recorded, not run); it sends
    no AWS request."""
    capsys.readouterr()
    with recorded_calls() as sent:
        chain.dry_run(opts, Recorder())
    assert sent == []
    return printed_calls(capsys.readouterr().out, commented=True)


def test_a_dry_run_prints_every_call_that_the_chain_makes(moto_url: str, aws_credentials: None, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Two real runs of `make deploy`'s chain on moto, the second finding the infra stack unchanged (its change set is
    deleted, not executed) and a REST API bound already: each makes only calls that the dry run of the same options
    prints, in the printed order; every call the dry run prints, one of the runs makes."""
    clients, opts = moto_clients(moto_url), options(tmp_path)
    printed = dry_run_calls(opts, capsys)
    made: list[tuple[str, str]] = []
    for _ in range(2):
        with recorded_calls() as calls:
            chain.deploy(opts, clients, Recorder(clients.apigateway, calls), FakeApi(log=calls), smoke_timeout_s=30)
        assert_printed(calls, printed)
        made += calls
    assert {("cloudformation", "delete_change_set"), ("apigateway", "get_rest_api")} <= set(made)
    assert_all_made(printed, made)


def test_a_dry_run_prints_every_call_of_the_cloudformation_path(
        moto_url: str, aws_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The same on the CloudFormation path, whose run here starts after the infra stack: its calls are the ones the
    dry run prints after the infra step's, in that order, and it makes every call that only this path prints."""
    printed = dry_run_calls(options(tmp_path, skip_endpoint=True, via="cloudformation"), capsys)
    assert infra.main(["deploy", "--stage", "dev", "--dry-run"]) == 0
    infra_step = printed_calls(capsys.readouterr().out, commented=True)
    assert printed[:len(infra_step)] == infra_step
    with recorded_calls() as made:
        deploy_via_cloudformation(moto_url, tmp_path, monkeypatch, made)
    assert_printed(made, printed[len(infra_step):])
    assert_all_made([call for call in printed if call not in dry_run_calls(options(tmp_path), capsys)], made)


def test_dry_run_prints_every_step_in_order_without_credentials(tiny_model_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("SAGEMAKER_ROLE_ARN", "arn:aws:iam::123456789012:role/SageMakerInference")
    assert main(["--stage", "dev", "--model-dir", str(tiny_model_dir), "--region", "us-east-1", "--dry-run"]) == 0
    out = capfd.readouterr().out
    steps = ["# infra", "news-classifier-api-dev-infra", "# cloudformation.create_change_set", "# endpoint",
             "sagemaker.create_model", "sagemaker-runtime.invoke_endpoint", "# policies", "# sts.get_caller_identity",
             "policy-dev.json, policy-drift-dev.json", "chalice deploy --stage dev",
             "update_usage_plan", "apigateway.get_api_key", "# smoke test", "# negative smoke test",
             "# http.POST without a key", "# http.GET without a key", '"url": "<url>/transactions"',
             "get-api-key --include-value"]
    positions = [out.index(step) for step in steps]
    assert positions == sorted(positions)
    assert '"ParameterValue": "news-transactions-dev"' in out and '"RepositoryName"' in out


def test_unknown_or_local_stage_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stage", "local", "--region", "us-east-1", "--dry-run"]) == 2
    assert main(["--stage", "staging", "--region", "us-east-1", "--dry-run"]) == 2
    assert "no stage 'staging'" in capsys.readouterr().err


def test_infra_dry_runs_print_the_stack_and_its_deletion(capsys: pytest.CaptureFixture[str]) -> None:
    assert infra.main(["deploy", "--stage", "prod", "--dry-run"]) == 0
    assert infra.main(["delete", "--stage", "prod", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"StackName": "news-classifier-api-prod-infra"' in out and '"ParameterValue": "90"' in out
    assert "update_usage_plan removing every /apiStages entry" in out and "cloudformation.delete_stack" in out


def test_a_dry_run_prints_every_call_that_deleting_the_infra_stack_makes(
        moto_url: str, aws_credentials: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`make infra-delete` on moto, a REST API stage bound to the stack's usage plan: it makes only calls that its dry
    run prints, in the printed order, and all of them; the dry run sends none."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    assert infra.main(["deploy", "--stage", "dev", "--poll-seconds", "0"]) == 0
    clients = moto_clients(moto_url)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in clients.cloudformation.describe_stacks(
        StackName=infra.stack_name("dev"))["Stacks"][0]["Outputs"]}
    bind_usage_plan(clients.apigateway, outputs["UsagePlanId"], rest_api_with_stage(clients.apigateway), "dev")
    made, printed = run_then_dry_run(infra.main, ["delete", "--stage", "dev", "--poll-seconds", "0"], capsys,
                                     commented=True)
    assert_all_made(printed, made)


def test_only_chalices_zip_cache_is_cleared(tmp_path: Path) -> None:
    """The chain clears Chalice's zip cache of the project it deploys, nothing else."""
    project = tmp_path / "p"
    (project / ".chalice" / "deployments").mkdir(parents=True)
    (project / ".chalice" / "config.json").write_text("{}")
    clear_package_cache(project)
    assert sorted(p.name for p in (project / ".chalice").iterdir()) == ["config.json"]
