"""Safe re-uploads (issue 10, item 3): each run is tied to the upload revision it read, a run a
newer upload replaced publishes nothing, and the batch's outputs are replaced as a set.

The functions run in-process against a moto server over HTTP, on a versioned data bucket (as
in infra/template.yaml), with the events EventBridge sends ("version-id" of the upload). The
race is reproduced by ordering: the slow original's stages run on either side of the
correction's upload and complete run, exactly where a real slow run would be at that moment.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from data_validation import handler as validation
from feature_engineering import handler as feature_engineering
from predictions import handler as predictions
from svc_helpers import batch_csv, keys, read_json

BATCH = "2024-04-20/reupload"
KEY = f"incoming/{BATCH}.csv"
REPORT, SUMMARY = f"reports/{BATCH}/validation.json", f"predictions/{BATCH}/summary.json"
VALIDATED, FEATURES = f"validated/{BATCH}/valid_rows.csv", f"features/{BATCH}/features.csv"
PREDICTIONS, QUARANTINE = f"predictions/{BATCH}/predictions.csv", f"quarantine/{BATCH}/invalid_rows.csv"


@pytest.fixture
def versioned_bucket(s3: Any) -> str:
    name = f"test-versioned-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def upload(s3: Any, bucket: str, body: str) -> dict[str, Any]:
    """Put the batch and return the EventBridge "Object Created" event S3 sends for it."""
    version = s3.put_object(Bucket=bucket, Key=KEY, Body=body.encode())["VersionId"]
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket}, "object": {"key": KEY, "version-id": version}},
    }


def revision_of_object(s3: Any, bucket: str, key: str) -> str:
    return s3.head_object(Bucket=bucket, Key=key)["Metadata"]["source-revision"]


def run_all(event: dict[str, Any]) -> dict[str, Any]:
    validated = validation.lambda_handler(event, None)
    assert validated["status"] == "passed", validated
    built = feature_engineering.lambda_handler(validated, None)
    assert built["status"] == "ok", built
    scored = predictions.lambda_handler(built, None)
    assert scored["status"] == "ok", scored
    return scored


ORIGINAL = batch_csv(first_day="2024-04-10", days=10, drop_label=True)
CORRECTION = batch_csv(first_day="2024-04-20", days=1, drop_label=True)


def assert_outputs_belong_to(s3: Any, bucket: str, version: str, rows: int) -> None:
    assert read_json(s3, bucket, REPORT)["source_revision"] == version
    assert read_json(s3, bucket, REPORT)["rows"] == rows
    summary = read_json(s3, bucket, SUMMARY)
    assert summary["source_revision"] == version and summary["source_key"] == KEY and summary["rows"] == rows
    for key in (VALIDATED, FEATURES, PREDICTIONS):
        assert revision_of_object(s3, bucket, key) == version, key


@pytest.mark.parametrize("correction_lands", ["before_validation", "after_validation", "after_features"])
def test_slow_original_and_fast_correction_end_with_the_corrections_outputs(
    s3: Any, versioned_bucket: str, uploaded_model: dict[str, Any], correction_lands: str
) -> None:
    bucket = versioned_bucket
    original = upload(s3, bucket, ORIGINAL)
    stages: list[Any] = [validation, feature_engineering, predictions]
    done = {"before_validation": 0, "after_validation": 1, "after_features": 2}[correction_lands]
    result: dict[str, Any] = original
    for stage in stages[:done]:  # the original's stages that finished before the correction came
        result = stage.lambda_handler(result, None)
        assert result["status"] in {"passed", "ok"}

    correction = upload(s3, bucket, CORRECTION)
    run_all(correction)
    # The slow original's next stage finishes last; superseded, it ends its execution (a
    # Succeed state in the state machine), so nothing after it runs.
    late = stages[done].lambda_handler(result, None)
    assert late["status"] == "superseded" and "this run" in late["reason"]

    rows = CORRECTION.count("\n") - 1
    assert rows < ORIGINAL.count("\n") - 1
    assert_outputs_belong_to(s3, bucket, correction["detail"]["object"]["version-id"], rows)


def test_a_superseded_predictions_run_writes_nothing(
    s3: Any, versioned_bucket: str, uploaded_model: dict[str, Any]
) -> None:
    bucket = versioned_bucket
    original = upload(s3, bucket, ORIGINAL)
    built = feature_engineering.lambda_handler(validation.lambda_handler(original, None), None)
    upload(s3, bucket, CORRECTION)  # lands while the original's predictions are being computed

    assert predictions.lambda_handler(built, None)["status"] == "superseded"
    assert not {k for k in keys(s3, bucket) if k.startswith("predictions/")}


def test_corrected_reupload_leaves_no_stale_quarantine(s3: Any, versioned_bucket: str) -> None:
    bucket = versioned_bucket
    lines = CORRECTION.splitlines()
    with_bad_row = "\n".join([*lines, lines[1].replace(",in_store,", ",fax,").replace(",online,", ",fax,")]) + "\n"
    assert validation.lambda_handler(upload(s3, bucket, with_bad_row), None)["invalid_rows"] >= 1
    assert QUARANTINE in keys(s3, bucket)

    fixed = validation.lambda_handler(upload(s3, bucket, CORRECTION), None)

    assert fixed["status"] == "passed" and fixed["invalid_rows"] == 0
    assert QUARANTINE not in keys(s3, bucket)
    assert read_json(s3, bucket, REPORT)["invalid_rows"] == 0


@pytest.mark.parametrize("failure", ["too_many_bad_rows", "unreadable"])
def test_failing_reupload_leaves_no_stale_features_predictions_or_summary(
    s3: Any, versioned_bucket: str, uploaded_model: dict[str, Any], failure: str
) -> None:
    bucket = versioned_bucket
    run_all(upload(s3, bucket, CORRECTION))
    assert {VALIDATED, FEATURES, PREDICTIONS, SUMMARY} <= keys(s3, bucket)
    if failure == "too_many_bad_rows":
        header, *rows = CORRECTION.splitlines()
        body = "\n".join([header, *(r.replace(",in_store,", ",fax,").replace(",online,", ",fax,") for r in rows)])
        expected = "failed"
    else:
        body = "just,some\ntext\n"
        expected = "error"

    result = validation.lambda_handler(upload(s3, bucket, body + "\n"), None)

    assert result["status"] == expected
    assert keys(s3, bucket) & {VALIDATED, FEATURES, PREDICTIONS, SUMMARY} == set()
    report = read_json(s3, bucket, REPORT)
    assert (
        report["passed"] is False and report["source_revision"] == s3.head_object(Bucket=bucket, Key=KEY)["VersionId"]
    )


def test_unversioned_bucket_ties_runs_to_the_etag(s3: Any, data_bucket: str) -> None:
    """Without versioning (data_bucket), the S3 notification names versionId "null" and the ETag."""
    etag = s3.put_object(Bucket=data_bucket, Key=KEY, Body=CORRECTION.encode())["ETag"]

    def notification(etag: str) -> dict[str, Any]:
        obj = {"key": KEY, "versionId": "null", "eTag": etag.strip('"')}
        return {"Records": [{"s3": {"bucket": {"name": data_bucket}, "object": obj}}]}

    assert validation.lambda_handler(notification(etag), None)["source_revision"] == etag.strip('"')
    s3.put_object(Bucket=data_bucket, Key=KEY, Body=ORIGINAL.encode())  # replaced: another ETag
    assert validation.lambda_handler(notification(etag), None)["status"] == "superseded"
