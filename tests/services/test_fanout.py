"""Split, fan-out and merge of a large batch (issue 10, item 1), against a moto server over HTTP.

The state machine's Map is played in-process the way the template's ItemSelector builds each
iteration's event: {bucket, batch_id, source_key, source_revision, status, chunk}. Small batches
are split into several chunks by the functions' own setting (CHUNK_TARGET_BYTES), not by patching.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import pandas as pd
import pytest
from data_validation import handler as validation
from feature_engineering import handler as feature_engineering
from merge import handler as merge
from predictions import handler as predictions
from svc_helpers import batch_csv, create_card_history_table, keys, read_json

BATCH = "2024-04-10/large"
KEY = f"incoming/{BATCH}.csv"
BODY = batch_csv(first_day="2024-04-10", days=10, drop_label=True)
RUN_FIELDS = ("bucket", "batch_id", "source_key", "source_revision")


@pytest.fixture
def versioned_bucket(s3: Any) -> str:
    name = f"test-fanout-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def upload(s3: Any, bucket: str, body: str, key: str = KEY) -> dict[str, Any]:
    version = s3.put_object(Bucket=bucket, Key=key, Body=body.encode())["VersionId"]
    return {"detail": {"bucket": {"name": bucket}, "object": {"key": key, "version-id": version}}}


def split_into(monkeypatch: pytest.MonkeyPatch, chunks: int, body: str = BODY) -> None:
    monkeypatch.setenv("CHUNK_TARGET_BYTES", str(len(body.encode()) // chunks + 1))


def score_chunks(validated: dict[str, Any]) -> list[dict[str, Any]]:
    """The Map: FeatureEngineering -> Predictions per chunk key."""
    scored = []
    for chunk in validated["chunks"]:
        item = {**{k: validated[k] for k in RUN_FIELDS}, "status": "passed", "chunk": chunk}
        built = feature_engineering.lambda_handler(item, None)
        assert built["status"] == "ok", built
        scored.append(predictions.lambda_handler(built, None))
        assert scored[-1]["status"] == "ok", scored[-1]
    return scored


def run_pipeline(event: dict[str, Any]) -> dict[str, Any]:
    validated = validation.lambda_handler(event, None)
    assert validated["status"] == "passed", validated
    score_chunks(validated)
    merged = merge.lambda_handler(validated, None)
    assert merged["status"] == "ok", merged
    return merged


def read_csv(s3: Any, bucket: str, key: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()), dtype={"card_id": str})


def test_split_puts_each_card_in_exactly_one_chunk(
    s3: Any, versioned_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    split_into(monkeypatch, 3)
    validated = validation.lambda_handler(upload(s3, versioned_bucket, BODY), None)

    assert validated["status"] == "passed" and len(validated["chunks"]) == 3
    revision = validated["source_revision"]
    assert all(c.startswith(f"chunks/validated/{BATCH}/{revision}/") for c in validated["chunks"])
    frames = [read_csv(s3, versioned_bucket, chunk) for chunk in validated["chunks"]]
    cards = [set(frame["card_id"]) for frame in frames]
    assert all(cards) and sum(len(c) for c in cards) == len(set().union(*cards))  # disjoint
    every = pd.concat(frames)
    assert len(every) == validated["valid_rows"] == BODY.count("\n") - 1
    assert sorted(every["transaction_id"]) == sorted(line.split(",")[0] for line in BODY.splitlines()[1:])
    report = read_json(s3, versioned_bucket, f"reports/{BATCH}/validation.json")
    assert report["chunks"] == 3 and "valid_key" not in report
    # Merge writes the batch-level objects; nothing for the batch is there before it.
    assert not {k for k in keys(s3, versioned_bucket) if k.startswith(("validated/", "features/", "predictions/"))}


def test_three_chunks_score_exactly_like_one(
    s3: Any,
    versioned_bucket: str,
    uploaded_model: dict[str, Any],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = run_pipeline(upload(s3, versioned_bucket, BODY))
    assert whole["chunks"] == 1
    single = {
        name: read_csv(s3, versioned_bucket, f"{name}/{BATCH}/{file}")
        for name, file in (("validated", "valid_rows.csv"), ("features", "features.csv"))
    }
    single_predictions = read_csv(s3, versioned_bucket, f"predictions/{BATCH}/predictions.csv")
    single_summary = read_json(s3, versioned_bucket, f"predictions/{BATCH}/summary.json")

    # The same upload again, split in three, against an empty card history (as the first run had).
    monkeypatch.setenv("CARD_HISTORY_TABLE", create_card_history_table(moto_endpoint))
    split_into(monkeypatch, 3)
    event = upload(s3, versioned_bucket, BODY)
    merged = run_pipeline(event)

    assert merged["chunks"] == 3 and merged["rows"] == whole["rows"] and merged["flagged"] == whole["flagged"]
    by_id = ["transaction_id"]
    split_predictions = read_csv(s3, versioned_bucket, f"predictions/{BATCH}/predictions.csv")
    pd.testing.assert_frame_equal(
        split_predictions.sort_values(by_id).reset_index(drop=True),
        single_predictions.sort_values(by_id).reset_index(drop=True),
    )
    for name, frame in single.items():
        key = f"{name}/{BATCH}/" + ("valid_rows.csv" if name == "validated" else "features.csv")
        merged_frame = read_csv(s3, versioned_bucket, key)
        pd.testing.assert_frame_equal(
            merged_frame.sort_values(by_id).reset_index(drop=True), frame.sort_values(by_id).reset_index(drop=True)
        )
    summary = read_json(s3, versioned_bucket, f"predictions/{BATCH}/summary.json")
    version = event["detail"]["object"]["version-id"]
    assert summary["source_revision"] == version and summary["chunks"] == 3
    for name, value in single_summary["score_distribution"].items():
        assert summary["score_distribution"][name] == pytest.approx(value, abs=1.5e-6), name
    for key in (f"validated/{BATCH}/valid_rows.csv", f"predictions/{BATCH}/predictions.csv"):
        assert s3.head_object(Bucket=versioned_bucket, Key=key)["Metadata"]["source-revision"] == version
    assert not {k for k in keys(s3, versioned_bucket) if k.startswith("chunks/")}  # merged, then removed


def test_a_superseded_runs_merge_publishes_nothing(
    s3: Any, versioned_bucket: str, uploaded_model: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    split_into(monkeypatch, 3)
    validated = validation.lambda_handler(upload(s3, versioned_bucket, BODY), None)
    score_chunks(validated)
    upload(s3, versioned_bucket, BODY.replace("tx_", "tx_9"))  # a correction lands before the merge

    result = merge.lambda_handler(validated, None)

    assert result["status"] == "superseded"
    published = {k for k in keys(s3, versioned_bucket) if k.startswith(("validated/", "features/", "predictions/"))}
    assert published == set()


def test_a_rejection_deep_in_a_large_upload_leaves_a_report_and_no_chunks(
    s3: Any, versioned_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = BODY.splitlines()
    ragged = "\n".join([*lines, lines[-1] + ",surplus"]) + "\n"  # the very last record is ragged
    split_into(monkeypatch, 3, ragged)

    result = validation.lambda_handler(upload(s3, versioned_bucket, ragged), None)

    assert result["status"] == "error" and "malformed CSV" in result["error"]["message"]
    report = read_json(s3, versioned_bucket, f"reports/{BATCH}/validation.json")
    assert report["rejected"] == "file" and "fields, the header has" in report["reason"]
    assert not {k for k in keys(s3, versioned_bucket) if not k.startswith(("incoming/", "reports/"))}
    assert s3.list_multipart_uploads(Bucket=versioned_bucket).get("Uploads", []) == []


def test_a_split_batch_needs_a_chunk_per_event(
    s3: Any, versioned_bucket: str, uploaded_model: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validate's result goes to the Map, not straight to FeatureEngineering (an event shape from
    before the fan-out); and a chunk must be one of the batch's own."""
    split_into(monkeypatch, 3)
    validated = validation.lambda_handler(upload(s3, versioned_bucket, BODY), None)

    whole = feature_engineering.lambda_handler(validated, None)
    assert whole["status"] == "error" and "was split into 3 chunks" in whole["error"]["message"]
    stray = {**validated, "chunk": validated["chunks"][0].replace(BATCH, "2024-04-10/other")}
    refused = feature_engineering.lambda_handler(stray, None)
    assert refused["status"] == "error" and refused["error"]["type"] == "BadEvent"
    assert "is not a chunk of batch" in refused["error"]["message"]
