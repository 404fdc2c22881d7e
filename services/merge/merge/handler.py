"""Merge handler (layers: CoreDataScienceLayer, AWSUtilitiesLayer).

Event: the DataValidation result, {"status": "passed", "bucket", "batch_id", "source_key",
"source_revision", "chunks": [keys]}, after the state machine's Map has run FeatureEngineering ->
Predictions on every chunk. Joins the chunks' validated rows, features and predictions into
validated/<batch>/valid_rows.csv, features/<batch>/features.csv and predictions/<batch>/predictions.csv
inside S3 (concat.py), then writes predictions/<batch>/summary.json last, naming the upload
revision, exactly the outputs a small batch gets; then removes the chunk objects.
Emits the batch's flag rate (batch_summary.FLAG_RATE_METRIC), once per batch whatever its chunks.

A batch of one chunk has those outputs from Predictions already: Merge only checks that its
summary is this run's. A run a newer upload replaced publishes nothing ("superseded").
"""

from __future__ import annotations

import json
import os
from typing import Any

from .batch_runs import fetch, require_latest, require_same_run, run_source
from .batch_summary import FLAG_RATE_METRIC, flag_rate_percent, out_of_order, row_counts
from .chunks import ChunkKeys, chunk_keys
from .runtime import (
    ArtifactError,
    BadEvent,
    BatchKeys,
    Logger,
    Outputs,
    Superseded,
    checked_batch_id,
    emit_metric,
    lambda_entry,
    layer_imports,
    require_fields,
    s3_client,
)

FUNCTION = "Merge"
logger = Logger(os.environ.get("POWERTOOLS_SERVICE_NAME", "merge"))

with layer_imports(FUNCTION, logger):
    import boto3  # noqa: F401  (imported here so a missing AWSUtilitiesLayer fails the init)

    from . import concat, scores

STAGES = ("validated", "features", "predictions")
DELETE_BATCH = 1000  # DeleteObjects' maximum


@lambda_entry(FUNCTION, logger)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    require_fields(event, "bucket", "batch_id")
    if event.get("status", "passed") != "passed":
        raise BadEvent(f"batch {event['batch_id']} did not pass validation (status {event['status']!r})")
    bucket = event["bucket"]
    keys = BatchKeys(checked_batch_id(event["batch_id"]))
    listed = event.get("chunks")
    if not isinstance(listed, list) or not listed:
        raise BadEvent(
            f"event lacks 'chunks', the list of chunk keys DataValidation returned; got keys {sorted(event)}"
        )
    chunks = [chunk_keys(keys, chunk) for chunk in listed]
    run = run_source(event)
    if run:  # a superseded run publishes nothing, not even a check's result
        require_latest(bucket, run["source_key"], run["source_revision"])
    if len(chunks) == 1 and chunks[0].whole:
        summary = _summary_of(bucket, keys.summary, run)
        merged = False
    else:
        summary = _merge(bucket, keys, chunks, run, event.get("upload"))
        _remove_chunks(bucket, chunks)
        merged = True
    rate = flag_rate_percent(int(summary["flagged"]), int(summary["rows"]))
    logger.info(
        f"batch {keys.batch_id} merged", chunks=len(chunks), rows=summary["rows"], merged=merged, flag_rate=rate
    )
    if rate is not None:
        # Here, not in Predictions: Merge sees every batch exactly once, split or not.
        emit_metric(logger.service, FLAG_RATE_METRIC, rate, unit="Percent", function_name=FUNCTION)
    return {
        "status": "ok",
        "bucket": bucket,
        "batch_id": keys.batch_id,
        **run,
        "chunks": len(chunks),
        "rows": summary["rows"],
        # The execution's output: what became of the upload's rows, and where the quarantine is.
        **row_counts(event.get("upload"), summary["rows"]),
        "flagged": summary["flagged"],
        "out_of_order": summary.get("out_of_order"),
        "summary_key": keys.summary,
        "model_version": summary["model_version"],
    }


def _summary_of(bucket: str, key: str, run: dict[str, str]) -> dict[str, Any]:
    """A JSON summary that must belong to this run (when the run is known)."""
    found = fetch(bucket, key, "summary")
    if run:
        require_same_run(found, bucket, key, run["source_revision"])
    try:
        document: dict[str, Any] = json.loads(found.body)
    except ValueError as exc:
        raise ArtifactError(f"summary s3://{bucket}/{key} is not JSON ({exc}): rerun the batch") from None
    return document


def _merge(
    bucket: str, keys: BatchKeys, chunks: list[ChunkKeys], run: dict[str, str], upload: object
) -> dict[str, Any]:
    parts = [_summary_of(bucket, chunk.summary, run) for chunk in chunks]
    models = {part["model_sha256"] for part in parts}
    if len(models) != 1:
        raise ArtifactError(
            f"the chunks of batch {keys.batch_id} were scored with {len(models)} different models (the model "
            "changed during the run): upload the batch again to score it with one"
        )
    revision = run.get("source_revision")
    counts = scores.score_counts(bucket, [chunk.predictions for chunk in chunks])
    first = parts[0]
    scored = sum(int(part["rows"]) for part in parts)
    summary = {
        "batch_id": keys.batch_id,
        "rows": scored,  # scored rows, as before (scored_rows below)
        **row_counts(upload, scored),
        "flagged": sum(int(part["flagged"]) for part in parts),
        "threshold": first["threshold"],
        "model_version": first["model_version"],
        "model_sha256": first["model_sha256"],
        "trained_with": first["trained_with"],
        "score_distribution": scores.distribution(counts),
        "predictions_key": keys.predictions,
        "out_of_order": out_of_order(part.get("out_of_order") for part in parts),
        "chunks": len(chunks),
        **run,  # the marker names the upload revision its results belong to
    }
    outputs = Outputs(bucket, revision)
    try:
        for stage in STAGES:
            pieces = concat.plan(bucket, [getattr(chunk, stage) for chunk in chunks], revision)
            if run:
                require_latest(bucket, run["source_key"], run["source_revision"])
            outputs.written.append(concat.join(bucket, pieces, getattr(keys, stage), outputs.metadata))
        if run:
            require_latest(bucket, run["source_key"], run["source_revision"])
        outputs.put_json(keys.summary, summary)
    except Superseded:
        raise  # keep what was written: it may already be the newer run's (same keys)
    except Exception:
        outputs.discard()
        raise
    return summary


def _remove_chunks(bucket: str, chunks: list[ChunkKeys]) -> None:
    """The chunks are merged: remove them (the bucket's lifecycle rule expires any a failed run leaves)."""
    doomed = [{"Key": k} for c in chunks for k in (c.validated, c.features, c.predictions, c.summary)]
    for start in range(0, len(doomed), DELETE_BATCH):
        answer = s3_client().delete_objects(
            Bucket=bucket, Delete={"Objects": doomed[start : start + DELETE_BATCH], "Quiet": True}
        )
        for error in answer.get("Errors", []):
            logger.warning("could not remove a merged chunk", key=error.get("Key"), code=error.get("Code"))
