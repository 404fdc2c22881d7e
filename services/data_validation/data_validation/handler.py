"""DataValidation handler (layers: CoreDataScienceLayer, AWSUtilitiesLayer).

Event: {"bucket", "key"} | an S3 event notification | an EventBridge "Object Created" event,
for an object incoming/<batch_id>.csv in the data bucket.

Writes, in this order: quarantine/<batch>/invalid_rows.csv (if any), validated/<batch>/valid_rows.csv
(only when the batch passes), then reports/<batch>/validation.json, the marker that the run finished.
Returns {"status": "passed" | "failed", "bucket", "batch_id", counts...} or a structured error.
"""

from __future__ import annotations

import os
from typing import Any

from .runtime import BatchKeys, Logger, Outputs, batch_from_key, lambda_entry, layer_imports, read_object, s3_reference

FUNCTION = "DataValidation"
logger = Logger(os.environ.get("POWERTOOLS_SERVICE_NAME", "data-validation"))

with layer_imports(FUNCTION, logger):
    import boto3  # noqa: F401  (imported here so a missing AWSUtilitiesLayer fails the init)

    from . import validate

SCHEMA = validate.load_schema()


@lambda_entry(FUNCTION, logger)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    bucket, key = s3_reference(event)
    keys = BatchKeys(batch_from_key(key))
    body = read_object(bucket, key, "batch")
    result = validate.validate(body, SCHEMA)
    outputs = Outputs(bucket)
    try:
        report = {"batch_id": keys.batch_id, "source": f"s3://{bucket}/{key}", **result.report}
        if len(result.invalid):
            report["quarantine_key"] = outputs.put(keys.quarantine, result.invalid.to_csv(index=False), "text/csv")
        if result.passed:
            report["valid_key"] = outputs.put(keys.validated, _to_csv(result.valid), "text/csv")
        else:
            # A rerun that fails must not leave an earlier run's valid rows looking current.
            outputs.delete(keys.validated)
        outputs.put_json(keys.report, report)
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
        "rows": result.report["rows"],
        "valid_rows": result.report["valid_rows"],
        "invalid_rows": result.report["invalid_rows"],
        "report_key": keys.report,
        **({"reason": result.report["reason"]} if not result.passed else {}),
    }


def _to_csv(frame: Any) -> str:
    # ISO 8601 with an explicit UTC offset, so the next stage parses exactly what we checked.
    out = frame.copy()
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(out.to_csv(index=False))
