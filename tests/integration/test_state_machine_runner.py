"""The template's real state machine, run locally on moto's own Step Functions interpreter:
PipelineStateMachine's definition from infra/template.yaml, the template's functions created in
the patched moto server from their packages and the built layers, each Lambda task run in the
project's sandbox inside the server (local_aws_fixes, patches 12-16), on the sample batch. The
history read back is GetExecutionHistory's, in AWS's format.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lambda_ml_layers.config.template import function_specs
from lambda_ml_layers.local.moto_server import MotoServer
from lambda_ml_layers.local.pipeline_progress import report_figures
from lambda_ml_layers.local.pipeline_stage import create_card_history_table, s3_created_event, upload_trained_model
from lambda_ml_layers.local.quick_pipeline import LocalPipeline, create_pipeline, pipeline_server, run_execution
from tests.integration.test_pipeline_sandbox import build_layers
from tests.project_factory import REPO

pytestmark = pytest.mark.emulator

TEMPLATE = REPO / "infra" / "template.yaml"
SAMPLE = REPO / "data" / "sample" / "transactions.csv"
CHUNKS = 3


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with pipeline_server(max_per_function=2) as running:  # two sandboxes per function: 2 cores
        yield running


@pytest.fixture(scope="module")
def pipeline(server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> LocalPipeline:
    """Built layers, a trained model, the template's card-history table, functions and state machine."""
    build_layers()
    models = f"it-sfn-models-{uuid.uuid4().hex[:10]}"
    server.client("s3").create_bucket(Bucket=models)
    upload_trained_model(server, REPO, models, tmp_path_factory.mktemp("model"))
    table = create_card_history_table(server, TEMPLATE, prefix="it-sfn")
    # DataValidation's own knob (split.py): the sample, about 0.2 MB, splits into 3 chunks by card,
    # so the Map fans out as a large upload's would.
    environment = {
        "MODEL_BUCKET": models,
        "CARD_HISTORY_TABLE": table,
        "CHUNK_TARGET_BYTES": str(SAMPLE.stat().st_size // CHUNKS + 1),
    }
    return create_pipeline(server, REPO, environment)


def upload(server: MotoServer, key: str, body: bytes) -> tuple[str, dict[str, Any]]:
    s3 = server.client("s3")
    bucket = f"it-sfn-data-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    return bucket, s3_created_event(bucket, key, version)


def keys(server: MotoServer, bucket: str) -> set[str]:
    return {o["Key"] for o in server.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])}


def entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def reports(server: MotoServer, function_name: str) -> list[str]:
    found = server.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{function_name}", filterPattern="REPORT")
    return [e["message"] for e in found["events"]]


def test_the_templates_state_machine_scores_the_sample_batch_through_the_sandboxes(
    server: MotoServer, pipeline: LocalPipeline
) -> None:
    batch = "2024-05-01/sample"
    bucket, event = upload(server, f"incoming/{batch}.csv", SAMPLE.read_bytes())

    result = run_execution(server, pipeline, event, log=lambda line: None)

    assert result.status == "SUCCEEDED", f"{result.error}: {result.cause}"
    assert result.events[-1]["type"] == "ExecutionSucceeded"
    states = entered(result.events)
    # Validate split the batch; the Map ran BuildFeatures -> Predict once per chunk; then Merge.
    assert [e["type"] for e in result.events].count("MapIterationSucceeded") == CHUNKS, states
    assert states.count("BuildFeatures") == states.count("Predict") == CHUNKS, states
    assert states[0] == "Validate" and states[-1] == "Done" and "Merge" in states, states
    specs = {spec.name: spec for spec in function_specs(TEMPLATE)}
    for logical_id, name in pipeline.functions.items():
        calls, _, _, peak = report_figures(reports(server, name))
        expected = CHUNKS if logical_id in ("FeatureEngineeringFunction", "PredictionsFunction") else 1
        assert calls == expected, logical_id
        assert 0 < peak <= specs[logical_id].memory_mb, logical_id

    # The outputs a small batch has always had, written by the real handlers into moto's S3.
    stored = keys(server, bucket)
    assert {f"reports/{batch}/validation.json", f"predictions/{batch}/summary.json"} <= stored
    s3 = server.client("s3")
    summary = json.loads(s3.get_object(Bucket=bucket, Key=f"predictions/{batch}/summary.json")["Body"].read())
    validation = json.loads(s3.get_object(Bucket=bucket, Key=f"reports/{batch}/validation.json")["Body"].read())
    assert summary["rows"] == validation["valid_rows"] > 0
    # What became of every uploaded row, in the marker and in the execution's output alike.
    counts = ("uploaded_rows", "scored_rows", "quarantined_rows", "quarantine_key")
    expected_counts = tuple(validation.get(name) for name in ("rows", "valid_rows", "invalid_rows", "quarantine_key"))
    assert tuple(summary[name] for name in counts) == expected_counts == tuple(result.output[name] for name in counts)
    predictions = s3.get_object(Bucket=bucket, Key=f"predictions/{batch}/predictions.csv")["Body"].read().decode()
    assert len(predictions.splitlines()) - 1 == summary["rows"]  # the chunks merged into the batch's one file
    # The batch's flag rate, emitted once by Merge as an EMF point (what the FlagRate alarms watch).
    merge_group = f"/aws/lambda/{pipeline.functions['MergeFunction']}"
    merge_logs = server.client("logs").filter_log_events(logGroupName=merge_group)["events"]
    points = [json.loads(e["message"]) for e in merge_logs if e["message"].startswith('{"_aws"')]
    [rate] = [point for point in points if "FlagRate" in point]
    assert rate["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LambdaMLPipeline"
    assert (rate["function_name"], rate["service"]) == ("Merge", "merge")
    assert rate["FlagRate"] == round(100 * summary["flagged"] / summary["rows"], 4) > 0


def test_a_rejected_upload_ends_in_the_templates_fail_state_with_its_report(
    server: MotoServer, pipeline: LocalPipeline
) -> None:
    batch = "2024-05-02/empty"
    bucket, event = upload(server, f"incoming/{batch}.csv", b"")

    result = run_execution(server, pipeline, event, log=lambda line: None)

    assert (result.status, result.error) == ("FAILED", "BatchRejected")
    assert "reports/<batch>/validation.json" in (result.cause or "")
    assert entered(result.events) == ["Validate", "ValidationPassed", "ValidationFailed"]
    assert f"reports/{batch}/validation.json" in keys(server, bucket)
