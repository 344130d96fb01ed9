"""Load the model endpoint alone: InvokeEndpoint through boto3, as the API calls it, without the API or the table.

    locust -f loadtest/endpoint_locustfile.py --headless -u 32 -r 32 -t 60s --host http://127.0.0.1:8080

Each call is reported to Locust as a request, so its statistics and reports work as for HTTP users.
"""

from __future__ import annotations

import functools
import json
import random
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from locust import events, task
from locust.env import Environment

from devkit.news_files import read_headlines
from loadtest.common import FinishesItsWait, add_common_arguments, pacing, save_final_stats

BATCH_SIZES = (2, 16)  # as the API locustfile's batches
DEFAULT_ENDPOINT = "news-classifier"  # the local stack's endpoint name
JSON = "application/json"

_headlines: list[str] = []


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    add_common_arguments(parser)
    parser.add_argument("--endpoint-name", default=DEFAULT_ENDPOINT, env_var="LOADTEST_ENDPOINT_NAME",
                        help="the SageMaker endpoint to invoke")


@events.init.add_listener
def _prepare(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    EndpointCaller.wait_time = pacing(options.user_rate)
    _headlines[:] = read_headlines(options.headlines)


events.test_stop.add_listener(save_final_stats)


@functools.cache
def _runtime_client(endpoint_url: str | None, pool_size: int) -> Any:
    """One client for all users (botocore clients are thread-safe), its connection pool sized for them."""
    config = Config(max_pool_connections=pool_size, retries={"mode": "standard", "total_max_attempts": 1})
    return boto3.client("sagemaker-runtime", endpoint_url=endpoint_url, config=config)


class EndpointCaller(FinishesItsWait):
    """One caller of InvokeEndpoint: single headlines mostly, sometimes a batch."""

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.endpoint_name = options.endpoint_name
        self.client = _runtime_client(self.host or None, max(10, options.num_users or 1))

    @task(16)
    def invoke_one(self) -> None:
        self._invoke([random.choice(_headlines)])

    @task(1)
    def invoke_batch(self) -> None:
        self._invoke(random.sample(_headlines, random.randint(*BATCH_SIZES)))

    def _invoke(self, headlines: list[str]) -> None:
        started = time.perf_counter()
        length, error = 0, None
        try:
            response = self.client.invoke_endpoint(EndpointName=self.endpoint_name, ContentType=JSON, Accept=JSON,
                                                   Body=json.dumps({"inputs": headlines}))
            body = response["Body"].read()
            length = len(body)
            if len(json.loads(body)["predictions"]) != len(headlines):
                error = ValueError(f"{len(headlines)} headline(s) sent, a different number of predictions answered")
        except (ClientError, BotoCoreError, ValueError, KeyError) as exc:
            error = exc
        name = "InvokeEndpoint" if len(headlines) == 1 else "InvokeEndpoint (batch)"
        self.environment.events.request.fire(request_type="boto3", name=name,
                                             response_time=(time.perf_counter() - started) * 1000,
                                             response_length=length, exception=error, context={})
