"""FeatureEngineering handler (layers: CoreDataScienceLayer, MLLibrariesLayer, AWSUtilitiesLayer).

Event: the DataValidation result, {"status": "passed", "bucket", "batch_id", ...}, with "chunk":
one of its chunk keys when the state machine's Map sends it (none: the whole batch, as before).
Reads validated/<batch>/valid_rows.csv (or the chunk) and the cards' earlier transactions
(card_history.py), records the chunk's transactions there, applies the preprocessing step fitted
in training (loaded with the model bundle, so training and serving share one fitted transform)
and writes features/<batch>/features.csv (or chunks/features/<batch>/<revision>/<n>.csv).
"""

from __future__ import annotations

import io
import os
from typing import Any

from .batch_runs import fetch, require_latest, require_same_run, run_source
from .chunks import chunk_keys
from .runtime import (
    REVISION_METADATA,
    ArtifactError,
    BadEvent,
    BadInput,
    BatchKeys,
    Logger,
    Outputs,
    checked_batch_id,
    lambda_entry,
    layer_imports,
    require_fields,
)

FUNCTION = "FeatureEngineering"
logger = Logger(os.environ.get("POWERTOOLS_SERVICE_NAME", "feature-engineering"))

with layer_imports(FUNCTION, logger):
    import boto3  # noqa: F401  (imported here so a missing AWSUtilitiesLayer fails the init)
    import pandas as pd
    import sklearn  # noqa: F401

    from . import card_history, features
    from .model_store import DEFAULT_MANIFEST_KEY, load_model


@lambda_entry(FUNCTION, logger)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    require_fields(event, "bucket", "batch_id")
    if event.get("status", "passed") != "passed":
        raise BadEvent(f"batch {event['batch_id']} did not pass validation (status {event['status']!r})")
    bucket = event["bucket"]
    keys = BatchKeys(checked_batch_id(event["batch_id"]))
    chunk = chunk_keys(keys, _chunk_of(event))
    model = load_model(_model_bucket(), os.environ.get("MODEL_MANIFEST_KEY", DEFAULT_MANIFEST_KEY), logger)

    run = run_source(event)
    validated = fetch(bucket, chunk.validated, "validated batch")
    if run:
        require_same_run(validated, bucket, chunk.validated, run["source_revision"])
    try:
        frame = features.parse_validated(pd.read_csv(io.BytesIO(validated.body), dtype=str))
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise BadInput(f"validated batch s3://{bucket}/{chunk.validated} is unusable: {exc}") from None
    # The upload revision the history items are recorded for: the run's, or for a manual rerun the
    # one the validated object was written from ("" if it names none).
    revision = run.get("source_revision") or validated.metadata.get(REVISION_METADATA, "")
    del validated  # the frame is the copy that matters: one chunk's worth, not both
    if frame.empty:
        raise BadInput(f"validated batch s3://{bucket}/{chunk.validated} has no rows")
    stored = card_history.read(frame, keys.batch_id)
    late = card_history.out_of_order(frame, stored)
    if late["rows"]:
        logger.warning(
            f"batch {keys.batch_id}: {late['rows']} row(s) of {late['cards']} card(s) are older than a transaction "
            "an earlier batch recorded (out of time order; the summary says what to do)",
            later_batches=late["later_batches"],
        )
    table = features.feature_table(frame, model.preprocessor, stored.transactions)
    if list(table.columns[len(features.ID_COLUMNS) :]) != model.feature_names:
        raise BadInput("the fitted preprocessor's feature names differ from the model manifest's")

    outputs = Outputs(bucket, run.get("source_revision"))
    if run:
        require_latest(bucket, run["source_key"], run["source_revision"])
    # Before the features: a later batch of these cards must see these transactions. (Chunks of
    # one batch hold disjoint cards, so their records, one item per card, batch and revision, never
    # collide; another revision's chunks write items of their own.)
    card_history.record(frame, keys.batch_id, revision)
    outputs.put(chunk.features, table.to_csv(index=False, float_format="%.6g"), "text/csv")
    return {
        "status": "ok",
        "bucket": bucket,
        "batch_id": keys.batch_id,
        **run,
        **({} if chunk.whole else {"chunk": chunk.validated}),
        "rows": len(table),
        "out_of_order": late,
        # DataValidation's row counts, for Predictions' summary (absent in a manual run's event).
        **({"upload": event["upload"]} if "upload" in event else {}),
        "features_key": chunk.features,
        "model_version": model.version,
        "model_sha256": model.sha256,
    }


def _chunk_of(event: dict[str, Any]) -> object:
    """The chunk the event names; an event naming none is for the whole batch (the shape from
    before the fan-out), which a batch split into several chunks does not have."""
    listed = event.get("chunks")
    if "chunk" not in event and isinstance(listed, list) and len(listed) > 1:
        raise BadEvent(
            f"batch {event['batch_id']} was split into {len(listed)} chunks: run FeatureEngineering once per "
            "chunk with {..., 'chunk': <key>} (the state machine's Map does), then Merge"
        )
    return event.get("chunk")


def _model_bucket() -> str:
    bucket = os.environ.get("MODEL_BUCKET")
    if not bucket:
        raise ArtifactError("MODEL_BUCKET is not set in the function's environment (see infra/template.yaml)")
    return bucket
