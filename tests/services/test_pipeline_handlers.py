"""FeatureEngineering and Predictions against a real S3 API, chained as the state machine runs them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sklearn
from data_validation import handler as validation
from feature_engineering import handler as feature_engineering
from predictions import handler as predictions
from predictions import model_store as predictions_model_store
from svc_helpers import batch_csv, errors_logged, keys, put, read_json

BATCH = "2024-04-20/b1"


def validated_batch(s3: Any, bucket: str, drop_label: bool = True) -> dict[str, Any]:
    put(s3, bucket, f"incoming/{BATCH}.csv", batch_csv(drop_label=drop_label))
    result = validation.lambda_handler({"bucket": bucket, "key": f"incoming/{BATCH}.csv"}, None)
    assert result["status"] == "passed"
    return result


def test_pipeline_good_path(
    s3: Any, data_bucket: str, uploaded_model: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    validated = validated_batch(s3, data_bucket)

    built = feature_engineering.lambda_handler(validated, None)
    assert built["status"] == "ok" and built["model_sha256"] == uploaded_model["sha256"]
    table = pd.read_csv(io.BytesIO(s3.get_object(Bucket=data_bucket, Key=built["features_key"])["Body"].read()))
    assert len(table) == validated["valid_rows"] == built["rows"]
    assert list(table.columns) == ["transaction_id", "card_id", *uploaded_model["feature_names"]]

    scored = predictions.lambda_handler(built, None)
    assert scored["status"] == "ok" and scored["rows"] == len(table)
    summary = read_json(s3, data_bucket, scored["summary_key"])
    assert summary["model_version"] == uploaded_model["model_version"]
    assert summary["trained_with"]["scikit-learn"] == sklearn.__version__
    dist = summary["score_distribution"]
    assert 0 <= dist["min"] <= dist["p50"] <= dist["p99"] <= dist["max"] <= 1
    out = pd.read_csv(
        io.BytesIO(s3.get_object(Bucket=data_bucket, Key=f"predictions/{BATCH}/predictions.csv")["Body"].read())
    )
    assert len(out) == summary["rows"] and out["flagged"].sum() == summary["flagged"]

    # The scores mean something: the batch's labelled frauds rank far above the rest.
    labels = pd.read_csv(io.StringIO(batch_csv()))[["transaction_id", "is_fraud"]]
    joined = out.merge(labels, on="transaction_id")
    assert (
        joined.loc[joined.is_fraud == 1, "fraud_score"].mean()
        > 5 * joined.loc[joined.is_fraud == 0, "fraud_score"].mean()
    )
    assert not errors_logged(capsys.readouterr().out)


def test_model_is_cached_in_tmp_between_warm_invocations(
    s3: Any, data_bucket: str, model_bucket: str, uploaded_model: dict[str, Any], tmp_path: Path
) -> None:
    built = feature_engineering.lambda_handler(validated_batch(s3, data_bucket), None)
    cached = tmp_path / "model-cache" / f"{uploaded_model['sha256']}.joblib"
    assert cached.exists()
    # Warm container: the artifact is no longer even needed in S3.
    s3.delete_object(Bucket=model_bucket, Key=uploaded_model["artifact_key"])
    assert predictions.lambda_handler(built, None)["status"] == "ok"  # loads from /tmp, verified
    assert feature_engineering.lambda_handler({"bucket": data_bucket, "batch_id": BATCH}, None)["status"] == "ok"


def test_damaged_tmp_cache_is_downloaded_again(
    s3: Any, data_bucket: str, uploaded_model: dict[str, Any], tmp_path: Path
) -> None:
    built = feature_engineering.lambda_handler(validated_batch(s3, data_bucket), None)
    cached = tmp_path / "model-cache" / f"{uploaded_model['sha256']}.joblib"
    cached.write_bytes(b"not the model")
    predictions_model_store._loaded.clear()  # a new container on the same /tmp
    assert predictions.lambda_handler(built, None)["status"] == "ok"
    assert cached.stat().st_size > 1000


def test_tampered_artifact_is_refused_and_nothing_is_written(
    s3: Any,
    data_bucket: str,
    model_bucket: str,
    uploaded_model: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    validated = validated_batch(s3, data_bucket)
    body = s3.get_object(Bucket=model_bucket, Key=uploaded_model["artifact_key"])["Body"].read()
    put(s3, model_bucket, uploaded_model["artifact_key"], body[:-1] + bytes([body[-1] ^ 1]))
    capsys.readouterr()

    for handler, event in ((feature_engineering, validated), (predictions, {"bucket": data_bucket, "batch_id": BATCH})):
        result = handler.lambda_handler(event, None)
        assert result["status"] == "error" and result["error"]["type"] == "ArtifactError"
        assert "was modified or replaced; refusing to load it" in result["error"]["message"]
        assert len(errors_logged(capsys.readouterr().out)) == 1
    assert not any(k.startswith(("features/", "predictions/")) for k in keys(s3, data_bucket))
    assert list((tmp_path / "model-cache").glob("*")) == []  # no unverified file left in /tmp


def test_missing_model_names_the_fix(s3: Any, data_bucket: str, model_bucket: str) -> None:
    result = feature_engineering.lambda_handler(validated_batch(s3, data_bucket), None)
    assert result["error"]["type"] == "ArtifactError"
    assert "does not exist" in result["error"]["message"] and "inv train-model --stage" in result["error"]["message"]
    assert not any(k.startswith("features/") for k in keys(s3, data_bucket))


def test_model_from_another_scikit_learn_is_refused(
    s3: Any, data_bucket: str, model_bucket: str, uploaded_model: dict[str, Any]
) -> None:
    manifest = {**uploaded_model, "versions": {**uploaded_model["versions"], "scikit-learn": "1.5.0"}}
    put(s3, model_bucket, "models/current/model.json", json.dumps(manifest))
    result = predictions.lambda_handler({"bucket": data_bucket, "batch_id": BATCH}, None)
    assert result["error"]["type"] == "ArtifactError"
    assert (
        f"trained with scikit-learn 1.5.0, but layer MLLibrariesLayer provides scikit-learn {sklearn.__version__}"
    ) in result["error"]["message"]


def test_model_replaced_between_steps_is_refused(s3: Any, data_bucket: str, uploaded_model: dict[str, Any]) -> None:
    built = feature_engineering.lambda_handler(validated_batch(s3, data_bucket), None)
    result = predictions.lambda_handler({**built, "model_sha256": "0" * 64}, None)
    assert result["error"]["type"] == "ArtifactError" and "rerun the batch" in result["error"]["message"]
    assert not any(k.startswith("predictions/") for k in keys(s3, data_bucket))


@pytest.mark.parametrize(
    ("features_csv", "message"),
    [
        ("transaction_id,card_id,log_amount\ntx_1,card_1,0.5\n", "lacks"),
        ("", "malformed"),
    ],
)
def test_bad_feature_tables_are_bad_input(
    s3: Any, data_bucket: str, uploaded_model: dict[str, Any], features_csv: str, message: str
) -> None:
    put(s3, data_bucket, f"features/{BATCH}/features.csv", features_csv)
    result = predictions.lambda_handler({"status": "ok", "bucket": data_bucket, "batch_id": BATCH}, None)
    assert result["error"]["type"] == "BadInput" and message in result["error"]["message"]
    assert not any(k.startswith("predictions/") for k in keys(s3, data_bucket))


@pytest.mark.parametrize("handler", [feature_engineering, predictions], ids=["features", "predictions"])
@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("not-a-dict", "event must be a JSON object"),
        ({"bucket": "b"}, "lacks string field(s) batch_id"),
        ({"bucket": "b", "batch_id": "../../etc"}, "no empty, '.' or '..' part"),
        ({"status": "error", "bucket": "b", "batch_id": "x"}, "status 'error'"),
    ],
)
def test_wrong_event_shapes_are_refused(
    handler: Any, event: Any, message: str, model_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = handler.lambda_handler(event, None)
    assert result["status"] == "error" and result["error"]["type"] == "BadEvent"
    assert message in result["error"]["message"]
    assert len(errors_logged(capsys.readouterr().out)) == 1


def test_missing_validated_batch_is_bad_input(s3: Any, data_bucket: str, uploaded_model: dict[str, Any]) -> None:
    result = feature_engineering.lambda_handler({"status": "passed", "bucket": data_bucket, "batch_id": "nope"}, None)
    assert result["error"]["type"] == "BadInput" and "validated batch" in result["error"]["message"]
