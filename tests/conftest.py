"""Shared fixtures: real data paths and small trained model folders built by the real training code."""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from training_jobs.config import default_data_dir, extra_data, split_file

# The API fixtures (the app under Chalice's test client, moto's table, fake endpoints) serve tests/api/ and the unit
# tests of the API's modules alike.
pytest_plugins = ("tests.support.api_fixtures",)

# A test is slow when it needs a model trained or a server started; these session fixtures do one or the other, so a
# test whose fixtures include one is marked `slow` here, whatever its file says, and `make test-fast` leaves it out.
SLOW_FIXTURES = frozenset({"tiny_model_dir", "small_model_dir", "moto_server", "endpoint_url", "fault_endpoint_url"})

# Labelled rows of the real NLP-100 split, enough for the model tests to learn something real.
SMALL_TRAIN_ROWS = 3000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = default_data_dir()
    if not split_file(path, "train").is_file():
        pytest.fail(f"the tests need a data folder holding the NLP-100 split (nlp100/train.tsv ...), not found at "
                    f"{path}; set NEWS_DATA_DIR to the news_aggregator folder")
    return path


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised, tiny DistilBERT with the real uncased vocabulary: exercises the real class fast."""
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    from model.encoders import embedded_encoder_dir

    folder = tmp_path_factory.mktemp("tiny_distilbert")
    tokenizer = AutoTokenizer.from_pretrained(embedded_encoder_dir())
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                              max_position_embeddings=128)
    DistilBertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _train(args: list[str]) -> dict:
    from training_jobs.train import parse_args, train

    return train(parse_args(args))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path, data_dir: Path) -> Path:
    """A complete model folder (tiny DistilBERT, 1 epoch on 400 real rows, with the corpus so that it has a judge):
    for plumbing, not accuracy."""
    folder = tmp_path_factory.mktemp("tiny_model")
    _train(["--base-model", str(tiny_encoder_dir), "--data", str(data_dir), "--model-dir", str(folder),
            "--extra-data", str(extra_data(data_dir)[0]), "--limit", "400", "--epochs", "1", "--max-length", "32"])
    return folder


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The embedded encoder fine-tuned on a real subset in CI: the subject of the behavioural tests."""
    folder = tmp_path_factory.mktemp("small_model")
    _train(["--base-model", "embedded", "--data", str(data_dir), "--model-dir", str(folder),
            "--limit", str(SMALL_TRAIN_ROWS), "--epochs", "2"])
    return folder


@pytest.fixture
def tiny_model_copy(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A private copy for tests that modify a model folder."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region: boto3 needs them even against moto, and they must never be real."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode on 127.0.0.1 (DynamoDB, S3, SageMaker, CloudWatch...), with what `chalice deploy` needs
    (tests/support/moto_aws.py); yields its URL."""
    from tests.support.moto_aws import start

    server = start(port=0)  # the port moto binds, not one picked before that another program may take
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_url(moto_server: str) -> str:
    """The shared moto server, emptied before the test so tests never see each other's resources."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10)
    return moto_server


@pytest.fixture
def moto_session(moto_url: str, aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 session whose every client talks to the emptied moto server (AWS_ENDPOINT_URL)."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    return boto3.Session(region_name="us-east-1")


@pytest.fixture
def transaction_table(moto_url: str, aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The API's transaction table on an empty moto, created by the API's own code; yields its name."""
    from chalicelib import transactions

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    monkeypatch.setenv("TABLE_NAME", "news-transactions-test")
    transactions.create_table()
    return "news-transactions-test"


@pytest.fixture(scope="session")
def endpoint_url(tiny_model_dir: Path) -> Iterator[str]:
    """`python -m model.serving.server` in a subprocess serving the tiny model as endpoint `news-classifier`; yields
    its URL.

    Point boto3 at it with `boto3.client("sagemaker-runtime", endpoint_url=endpoint_url)` or
    AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME; `GET {endpoint_url}/ping` and `POST {endpoint_url}/invocations` also work.
    """
    from model.tools.local_endpoint import running_endpoint

    with running_endpoint(tiny_model_dir, endpoint_name="news-classifier") as url:
        yield url


@pytest.fixture(scope="session")
def fault_endpoint_url(tiny_model_dir: Path) -> Iterator[str]:
    """Like `endpoint_url`, started with `--enable-fault-injection`: PUT faults to `{url}/_faults`
    (model/serving/faults.py).

    Shared by the session: a test that sets faults clears them when it ends (DELETE `{url}/_faults`).
    """
    from model.tools.local_endpoint import running_endpoint

    with running_endpoint(tiny_model_dir, endpoint_name="news-classifier", args=["--enable-fault-injection"]) as url:
        yield url


@pytest.fixture(scope="session")
def tiny_onnx_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The tiny model folder plus its fused fp32 and int8 ONNX models (model.onnx_export), as shipped."""
    from model.onnx_export import export_model_folder

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("tiny_onnx") / "model"))
    export_model_folder(folder)
    return folder
