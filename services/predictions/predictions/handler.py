"""Predictions handler (layers: CoreDataScienceLayer, MLLibrariesLayer, AWSUtilitiesLayer).

Event: the FeatureEngineering result, {"status": "ok", "bucket", "batch_id", "model_sha256"?,
"chunk"?}. Loads the model bundle (sha256-checked, cached in /tmp), scores features/<batch>/features.csv,
writes predictions/<batch>/predictions.csv and then predictions/<batch>/summary.json, the
marker that the batch is done. For a chunk of a split batch it scores and writes the chunk's
objects under chunks/ instead, with a chunk summary (rows, flagged, model) that Merge adds up.
"""

from __future__ import annotations

import io
import os
from typing import Any

from .batch_runs import fetch, require_latest, require_same_run, run_source
from .batch_summary import ROW_COUNTS, out_of_order, row_counts
from .chunks import chunk_keys
from .runtime import (
    ArtifactError,
    BadEvent,
    BadInput,
    BatchKeys,
    Logger,
    Outputs,
    Superseded,
    checked_batch_id,
    lambda_entry,
    layer_imports,
    require_fields,
)

FUNCTION = "Predictions"
logger = Logger(os.environ.get("POWERTOOLS_SERVICE_NAME", "predictions"))

with layer_imports(FUNCTION, logger):
    import boto3  # noqa: F401  (imported here so a missing AWSUtilitiesLayer fails the init)
    import numpy as np
    import pandas as pd
    import sklearn  # noqa: F401

    from .model_store import DEFAULT_MANIFEST_KEY, load_model

ID_COLUMNS = ["transaction_id", "card_id"]
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


@lambda_entry(FUNCTION, logger)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    require_fields(event, "bucket", "batch_id")
    if event.get("status", "ok") != "ok":
        raise BadEvent(f"features for batch {event['batch_id']} were not built (status {event['status']!r})")
    bucket = event["bucket"]
    keys = BatchKeys(checked_batch_id(event["batch_id"]))
    chunk = chunk_keys(keys, event.get("chunk"))
    model_bucket = os.environ.get("MODEL_BUCKET")
    if not model_bucket:
        raise ArtifactError("MODEL_BUCKET is not set in the function's environment (see infra/template.yaml)")
    model = load_model(model_bucket, os.environ.get("MODEL_MANIFEST_KEY", DEFAULT_MANIFEST_KEY), logger)
    expected = event.get("model_sha256")
    if expected and expected != model.sha256:
        # The model changed between feature building and scoring; features may not fit it.
        raise ArtifactError(
            f"features were built for model sha256 {str(expected)[:12]}..., but the current model "
            f"is {model.sha256[:12]}...; rerun the batch from FeatureEngineering"
        )

    run = run_source(event)
    feature_table = fetch(bucket, chunk.features, "feature table")
    if run:
        require_same_run(feature_table, bucket, chunk.features, run["source_revision"])
    try:
        table = pd.read_csv(io.BytesIO(feature_table.body), dtype={c: str for c in ID_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BadInput(f"feature table s3://{bucket}/{chunk.features} is malformed: {exc}") from None
    del feature_table
    missing = [c for c in ID_COLUMNS + model.feature_names if c not in table.columns]
    if missing:
        raise BadInput(f"feature table lacks {len(missing)} column(s) the model needs, e.g. {missing[:3]}")
    if table.empty:
        raise BadInput(f"feature table s3://{bucket}/{chunk.features} has no rows")
    values = table[model.feature_names].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise BadInput("feature table has missing or infinite values")

    scores = model.model.predict_proba(values)[:, 1]
    threshold = float(model.manifest.get("threshold", 0.5))
    predictions = table[ID_COLUMNS].assign(fraud_score=np.round(scores, 6), flagged=(scores >= threshold).astype(int))
    summary = {
        "batch_id": keys.batch_id,
        "rows": len(predictions),  # scored rows, as before (scored_rows below)
        **row_counts(event.get("upload"), len(predictions)),
        "flagged": int(predictions["flagged"].sum()),
        "threshold": threshold,
        "model_version": model.version,
        "model_sha256": model.sha256,
        "trained_with": model.manifest["versions"],
        "score_distribution": {
            "mean": round(float(scores.mean()), 6),
            "min": round(float(scores.min()), 6),
            "max": round(float(scores.max()), 6),
            **{f"p{int(q * 100)}": round(float(np.quantile(scores, q)), 6) for q in QUANTILES},
        },
        "predictions_key": chunk.predictions,
        # FeatureEngineering's count of rows that arrived out of time order (a chunk's as it came:
        # Merge adds them up).
        "out_of_order": out_of_order([event.get("out_of_order")]) if chunk.whole else event.get("out_of_order"),
        **run,  # the marker names the upload revision its results belong to
    }
    if not chunk.whole:
        # A chunk's counts and model, for Merge to add up; the batch's summary is Merge's to write.
        # (Quantiles do not add up: Merge computes the batch's score distribution from the scores.)
        # (Row counts of the upload are the batch's, not a chunk's: Merge has them from DataValidation.)
        summary = {k: v for k, v in summary.items() if k not in {"score_distribution", *ROW_COUNTS}}
    outputs = Outputs(bucket, run.get("source_revision"))
    try:
        if run:
            require_latest(bucket, run["source_key"], run["source_revision"])
        outputs.put(chunk.predictions, predictions.to_csv(index=False), "text/csv")
        if run:
            require_latest(bucket, run["source_key"], run["source_revision"])
        outputs.put_json(keys.summary if chunk.whole else chunk.summary, summary)
    except Superseded:
        raise  # keep what was written: it may already be the newer run's (same keys)
    except Exception:
        outputs.discard()
        raise
    return {
        "status": "ok",
        "bucket": bucket,
        "batch_id": keys.batch_id,
        "rows": len(predictions),
        "flagged": summary["flagged"],
        **({name: summary[name] for name in ROW_COUNTS} if chunk.whole else {}),
        "out_of_order": summary["out_of_order"],
        "summary_key": keys.summary if chunk.whole else chunk.summary,
        "model_version": model.version,
        **run,
        **({} if chunk.whole else {"chunk": chunk.validated}),
    }
