"""Fixtures for the handler tests: a real moto server over HTTP, buckets, a trained model.

Runs in the python3.12 venv of `nox -s service_tests` (the layer locks' packages); the moto
server runs from the tooling venv as a subprocess. Module level stays standard-library
only, because the template tests below this folder run in the SAM venv instead.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from svc_helpers import create_card_history_table

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
FUNCTIONS = ("data_validation", "feature_engineering", "predictions", "merge")
SAMPLE = ROOT / "data" / "sample" / "transactions.csv"

# Each function's folder is its Lambda CodeUri; on Lambda it is /var/task, first on sys.path.
for _function in (*FUNCTIONS, "training"):
    sys.path.insert(0, str(SERVICES / _function))
sys.path.insert(0, str(ROOT))  # lambda_ml_layers.local.moto_server (standard library only)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from lambda_ml_layers.local.moto_server import moto_server

    with moto_server() as server:
        saved = {k: os.environ.get(k) for k in server.client_env()}
        os.environ.update(server.client_env())
        try:
            yield server.endpoint_url
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def s3(moto_endpoint: str) -> Any:
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint)
    assert client.meta.endpoint_url.startswith("http://localhost:")
    return client


def _bucket(s3: Any, kind: str) -> str:
    name = f"test-{kind}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def data_bucket(s3: Any) -> str:
    return _bucket(s3, "data")


@pytest.fixture
def card_history_table(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    name = create_card_history_table(moto_endpoint)
    monkeypatch.setenv("CARD_HISTORY_TABLE", name)
    return name


@pytest.fixture(autouse=True)
def _card_history_for_handler_tests(request: pytest.FixtureRequest) -> None:
    """Every test that reaches the moto server gets an empty card-history table: DataValidation
    registers each upload's revision there (batch_history.py), FeatureEngineering reads it."""
    if "moto_endpoint" in request.fixturenames:
        request.getfixturevalue("card_history_table")


@pytest.fixture
def model_bucket(s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, card_history_table: str) -> str:
    """An empty model bucket the functions are configured to read, an empty /tmp cache, and
    (FeatureEngineering's other resource) an empty card-history table."""
    name = _bucket(s3, "models")
    monkeypatch.setenv("MODEL_BUCKET", name)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "model-cache"))
    for package in ("feature_engineering", "predictions"):
        # Each function's container starts with no model in memory.
        __import__(f"{package}.model_store", fromlist=["_loaded"])._loaded.clear()
    return name


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The real training code on the sample (fewer boosting rounds, to stay fast)."""
    import trainer

    out = tmp_path_factory.mktemp("model")
    bundle, metrics = trainer.train(trainer.load_training_frame(SAMPLE), max_iter=60)
    manifest = trainer.write_artifact(bundle, metrics, out)
    return out, manifest


@pytest.fixture
def uploaded_model(s3: Any, model_bucket: str, trained_model: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    import trainer_io

    out, manifest = trained_model
    trainer_io.upload(out, manifest, model_bucket, "models/current/model.json")
    return manifest
