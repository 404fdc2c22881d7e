"""DataValidation handler (layers: CoreDataScienceLayer, AWSUtilitiesLayer).

Event: {"bucket", "key"} | an S3 event notification | an EventBridge "Object Created" event,
for an object incoming/<batch_id>.csv (or .CSV, .csv.gz) in the data bucket.

Streams the upload in bounded memory (split.py) and writes, in this order:
quarantine/<batch>/invalid_rows.csv (if any), the valid rows (only when the batch passes) as
validated/<batch>/valid_rows.csv or, for a large upload, one chunk per group of cards under
chunks/validated/<batch>/<revision>/, then reports/<batch>/validation.json, the marker that the
run finished. Before it publishes (or rejects), the upload's revision becomes the batch's current
one for the card history (batch_history.take_over): what an earlier upload of the batch recorded
stops counting in later batches' features at the moment its outputs are withdrawn.
Returns {"status": "passed" | "failed", "bucket", "batch_id", counts..., "chunks": [keys]} (the
state machine's Map runs once per chunk key) or a structured error.
An upload refused as a whole (unreadable, missing columns, a refused name, too big) still
writes reports/<batch>/validation.json, where the state machine's BatchRejected points.
"""

from __future__ import annotations

import os
from typing import Any

from .batch_runs import event_revision, latest_revision, open_object, require_latest
from .runtime import (
    ArtifactError,
    BadInput,
    BatchKeys,
    Logger,
    Outputs,
    Superseded,
    lambda_entry,
    layer_imports,
    s3_reference,
)

FUNCTION = "DataValidation"
logger = Logger(os.environ.get("POWERTOOLS_SERVICE_NAME", "data-validation"))

with layer_imports(FUNCTION, logger):
    import boto3  # noqa: F401  (imported here so a missing AWSUtilitiesLayer fails the init)

    from . import batch_history, inputs, schema, split

SCHEMA = schema.load_schema()


@lambda_entry(FUNCTION, logger)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    bucket, key = s3_reference(event)
    revision = event_revision(event)
    try:
        upload = inputs.parse_key(key)
        limit = inputs.max_batch_bytes()
        opened = open_object(bucket, key, "batch", revision, max_bytes=limit)
        revision = opened.revision
        keys = BatchKeys(upload.batch_id)
        sink, checked = split.split_upload(bucket, upload, opened, keys, limit, SCHEMA)
    except BadInput as exc:
        report_key = _reject(bucket, key, revision, str(exc))
        raise BadInput(f"{exc} (report: s3://{bucket}/{report_key})") from None
    try:
        return _publish(bucket, key, revision, keys, sink, checked)
    finally:
        sink.abort()  # whatever was not published (a failed batch's chunks, or after an error)


def _publish(
    bucket: str, key: str, revision: str, keys: BatchKeys, sink: split.ChunkSink, checked: dict[str, Any]
) -> dict[str, Any]:
    """Make the checked upload's outputs visible: quarantine, chunks (if it passed), report last."""
    passed = bool(checked["passed"])
    outputs = Outputs(bucket, revision)
    require_latest(bucket, key, revision)
    _take_over_history(bucket, key, keys.batch_id, revision)
    # The previous run's set stops being "done" first; on failure the rest of it goes too.
    _remove_previous_results(outputs, keys, keep_upstream=passed)
    chunks: list[str] = []
    try:
        report = {"batch_id": keys.batch_id, "source": f"s3://{bucket}/{key}", "source_revision": revision, **checked}
        quarantine = sink.publish_quarantine(outputs)
        if quarantine:
            report["quarantine_key"] = quarantine
        else:
            # A corrected re-upload must not leave the earlier run's invalid rows beside a clean report.
            outputs.delete(keys.quarantine)
        if passed:
            chunks = sink.publish_chunks(outputs)
            if sink.whole:
                report["valid_key"] = keys.validated
            else:  # Merge writes validated/, features/ and predictions/ from the chunks
                report["chunks"] = len(chunks)
        require_latest(bucket, key, revision)  # again: validating took a while
        outputs.put_json(keys.report, report)
    except Superseded:
        raise  # keep what was written: it may already be the newer run's (same keys)
    except Exception:
        outputs.discard()
        raise
    status = "passed" if passed else "failed"
    log = logger.info if passed else logger.warning
    log(
        f"batch {keys.batch_id} {status}",
        rows=checked["rows"],
        invalid_rows=checked["invalid_rows"],
        chunks=len(chunks),
        reason=checked.get("reason"),
    )
    return {
        "status": status,
        "bucket": bucket,
        "batch_id": keys.batch_id,
        "source_key": key,
        "source_revision": revision,
        "rows": checked["rows"],
        "valid_rows": checked["valid_rows"],
        "invalid_rows": checked["invalid_rows"],
        "report_key": keys.report,
        # What the batch's summary.json (and the execution's output) reports about the upload: the
        # state machine's Map hands it to each chunk, Merge has it here.
        "upload": {
            "rows": checked["rows"],
            "quarantined_rows": checked["invalid_rows"],
            "quarantine_key": report.get("quarantine_key"),
        },
        # The state machine's Map runs FeatureEngineering -> Predictions once per chunk key.
        "chunks": chunks,
        **({"reason": checked["reason"]} if not passed else {}),
    }


def _remove_previous_results(outputs: Outputs, keys: BatchKeys, keep_upstream: bool) -> None:
    """An earlier run's outputs must not stay looking current. The summary (the "done" marker)
    goes first; a passing run's new validated/features/predictions then replace the rest, a
    failing or rejected run removes them (marker first, so no marker is ever without its data)."""
    outputs.delete(keys.summary)
    if not keep_upstream:
        for key in (keys.predictions, keys.features, keys.validated):
            outputs.delete(key)


def _reject(bucket: str, key: str, revision: str | None, reason: str) -> str:
    """File-level rejection: remove the batch's earlier results (they would look current) and
    write the report the state machine's BatchRejected message sends the user to."""
    keys = BatchKeys(inputs.report_batch_for(key))
    outputs = Outputs(bucket, revision)
    if revision is not None:
        require_latest(bucket, key, revision)  # a rejected old upload must not touch a newer one's results
    # Unread (missing, or refused before its revision was known): the key's current revision, if any.
    _take_over_history(bucket, key, keys.batch_id, revision or _upload_revision(bucket, key))
    _remove_previous_results(outputs, keys, keep_upstream=False)
    outputs.delete(keys.quarantine)
    report = {
        "batch_id": keys.batch_id,
        "source": f"s3://{bucket}/{key}",
        "source_revision": revision,
        "passed": False,
        "rejected": "file",
        "reason": reason,
        "rows": None,
    }
    return outputs.put_json(keys.report, report)


def _take_over_history(bucket: str, key: str, batch_id: str, revision: str) -> None:
    """This upload's revision becomes the one the card history counts for the batch (an earlier
    upload's recorded transactions stop counting), unless a newer upload is already the latest."""
    batch_history.take_over(batch_id, revision, key, lambda: _upload_revision(bucket, key))


def _upload_revision(bucket: str, key: str) -> str:
    """The upload's current revision; for an upload that no longer exists (or cannot be read)
    NO_REVISION, so no revision of its batch counts, as none of its outputs remain."""
    try:
        return latest_revision(bucket, key)
    except ArtifactError:
        return batch_history.NO_REVISION
