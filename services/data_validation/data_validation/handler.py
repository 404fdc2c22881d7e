"""DataValidation handler (layers: CoreDataScienceLayer, AWSUtilitiesLayer).

Event: {"bucket", "key"} | an S3 event notification | an EventBridge "Object Created" event,
for an object incoming/<batch_id>.csv (or .CSV, .csv.gz) in the data bucket.

Writes, in this order: quarantine/<batch>/invalid_rows.csv (if any), validated/<batch>/valid_rows.csv
(only when the batch passes), then reports/<batch>/validation.json, the marker that the run finished.
Returns {"status": "passed" | "failed", "bucket", "batch_id", counts...} or a structured error.
An upload refused as a whole (unreadable, missing columns, a refused name, too big) still
writes reports/<batch>/validation.json, where the state machine's BatchRejected points.
"""

from __future__ import annotations

import os
from typing import Any

from .batch_runs import event_revision, fetch, require_latest
from .runtime import BadInput, BatchKeys, Logger, Outputs, Superseded, lambda_entry, layer_imports, s3_reference

FUNCTION = "DataValidation"
logger = Logger(os.environ.get("POWERTOOLS_SERVICE_NAME", "data-validation"))

with layer_imports(FUNCTION, logger):
    import boto3  # noqa: F401  (imported here so a missing AWSUtilitiesLayer fails the init)

    from . import inputs, validate

SCHEMA = validate.load_schema()


@lambda_entry(FUNCTION, logger)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    bucket, key = s3_reference(event)
    revision = event_revision(event)
    try:
        upload = inputs.parse_key(key)
        limit = inputs.max_batch_bytes()
        fetched = fetch(bucket, key, "batch", revision, max_bytes=limit)
        revision = fetched.revision
        text, notes = inputs.decode(fetched.body, upload, limit)
        del fetched  # the text is the copy that matters; don't hold both
        result = validate.validate(text, SCHEMA, tuple(notes))
    except BadInput as exc:
        report_key = _reject(bucket, key, revision, str(exc))
        raise BadInput(f"{exc} (report: s3://{bucket}/{report_key})") from None
    keys = BatchKeys(upload.batch_id)
    outputs = Outputs(bucket, revision)
    require_latest(bucket, key, revision)
    # The previous run's set stops being "done" first; on failure the rest of it goes too.
    _remove_previous_results(outputs, keys, keep_upstream=result.passed)
    try:
        report = {
            "batch_id": keys.batch_id,
            "source": f"s3://{bucket}/{key}",
            "source_revision": revision,
            **result.report,
        }
        if len(result.invalid):
            report["quarantine_key"] = outputs.put(keys.quarantine, result.invalid.to_csv(index=False), "text/csv")
        else:
            # A corrected re-upload must not leave the earlier run's invalid rows beside a clean report.
            outputs.delete(keys.quarantine)
        if result.passed:
            report["valid_key"] = outputs.put(keys.validated, _to_csv(result.valid), "text/csv")
        require_latest(bucket, key, revision)  # again: validating took a while
        outputs.put_json(keys.report, report)
    except Superseded:
        raise  # keep what was written: it may already be the newer run's (same keys)
    except Exception:
        outputs.discard()
        raise
    status = "passed" if result.passed else "failed"
    log = logger.info if result.passed else logger.warning
    log(
        f"batch {keys.batch_id} {status}",
        rows=result.report["rows"],
        invalid_rows=result.report["invalid_rows"],
        reason=result.report.get("reason"),
    )
    return {
        "status": status,
        "bucket": bucket,
        "batch_id": keys.batch_id,
        "source_key": key,
        "source_revision": revision,
        "rows": result.report["rows"],
        "valid_rows": result.report["valid_rows"],
        "invalid_rows": result.report["invalid_rows"],
        "report_key": keys.report,
        **({"reason": result.report["reason"]} if not result.passed else {}),
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


def _to_csv(frame: Any) -> str:
    # ISO 8601 with an explicit UTC offset, so the next stage parses exactly what we checked.
    out = frame.copy()
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(out.to_csv(index=False))
