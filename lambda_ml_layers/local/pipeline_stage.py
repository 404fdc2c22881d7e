"""The pipeline's AWS side on a local moto server, for running the functions in the sandbox.

Shared by the integration tests (tests/integration/test_pipeline_sandbox.py) and
`inv trace-layers`: buckets and the card-history table made as infra/template.yaml makes them,
the environment a sandboxed function gets, and the event EventBridge hands the state machine
(and it hands DataValidation) for an upload.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from ..config.template import load_template
from .moto_server import MotoServer
from .training import TrainRequest, train_model

SAMPLE = Path("data/sample/transactions.csv")  # relative to the project root
TABLE_SHAPE = ("BillingMode", "AttributeDefinitions", "KeySchema", "LocalSecondaryIndexes")


def new_bucket(s3: Any, kind: str, versioned: bool = False, prefix: str = "it") -> str:
    """A fresh bucket; `versioned` as the template's data bucket is."""
    name = f"{prefix}-{kind}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def create_card_history_table(server: MotoServer, template: Path, prefix: str = "it") -> str:
    """The template's CardHistoryTable (its own key schema and index), created in moto."""
    properties = load_template(template)["Resources"]["CardHistoryTable"]["Properties"]
    name = f"{prefix}-card-history-{uuid.uuid4().hex[:12]}"
    shape = {k: properties[k] for k in TABLE_SHAPE if k in properties}
    server.client("dynamodb").create_table(TableName=name, **shape)
    return name


def function_environment(server: MotoServer, model_bucket: str, card_history_table: str) -> dict[str, str]:
    """What a sandboxed function gets besides the template's variables: the server, and what
    deploy fills in (the model bucket and the card-history table)."""
    return {**server.client_env(), "MODEL_BUCKET": model_bucket, "CARD_HISTORY_TABLE": card_history_table}


def s3_created_event(bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
    """What EventBridge hands the state machine, and it hands Validate, for an upload."""
    detail_object: dict[str, Any] = {"key": key, "size": 1}
    if version_id is not None:
        detail_object["version-id"] = version_id
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "region": "us-east-1",
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": detail_object},
    }


def upload_trained_model(server: MotoServer, root: Path, bucket: str, out_dir: Path) -> dict[str, Any]:
    """`inv train-model --bucket BUCKET` against the server: trained in the layers' python3.12 on the
    sample, uploaded; the manifest (models/current/model.json) it wrote."""
    env = {**os.environ, **server.client_env()}
    train_model(TrainRequest(root=root, bucket=bucket, out_dir=out_dir, env=env), log=lambda line: None)
    manifest: dict[str, Any] = json.loads((out_dir / "model.json").read_text())
    return manifest
