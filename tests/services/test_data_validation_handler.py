"""DataValidation against a real S3 API (moto server over HTTP): good path and every bad input."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
from data_validation import handler, runtime
from svc_helpers import batch_csv, errors_logged, keys, log_records, put, read_json

KEY = "incoming/2024-04-20/batch-1.csv"
BATCH = "2024-04-20/batch-1"


def with_bad_rows(csv: str) -> str:
    lines = csv.splitlines()
    lines[3] = lines[3].replace(",in_store,", ",fax,").replace(",online,", ",fax,").replace(",atm,", ",fax,")
    lines.append(lines[5])  # a duplicated transaction
    return "\n".join(lines) + "\n"


def test_good_batch_passes_and_quarantines_invalid_rows(
    s3: Any, data_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = with_bad_rows(batch_csv())
    rows = csv.count("\n") - 1
    put(s3, data_bucket, KEY, csv)

    result = handler.lambda_handler({"bucket": data_bucket, "key": KEY}, None)

    assert result["status"] == "passed" and result["batch_id"] == BATCH
    assert (result["rows"], result["invalid_rows"], result["valid_rows"]) == (rows, 3, rows - 3)
    assert keys(s3, data_bucket) == {
        KEY,
        f"reports/{BATCH}/validation.json",
        f"quarantine/{BATCH}/invalid_rows.csv",
        f"validated/{BATCH}/valid_rows.csv",
    }
    quarantined = pd.read_csv(
        io.BytesIO(s3.get_object(Bucket=data_bucket, Key=f"quarantine/{BATCH}/invalid_rows.csv")["Body"].read())
    )
    assert len(quarantined) == 3
    assert quarantined["_errors"].str.contains("channel: not an allowed value|duplicate key").all()
    valid = pd.read_csv(
        io.BytesIO(s3.get_object(Bucket=data_bucket, Key=f"validated/{BATCH}/valid_rows.csv")["Body"].read())
    )
    assert len(valid) == rows - 3 and valid["transaction_id"].is_unique
    report = read_json(s3, data_bucket, f"reports/{BATCH}/validation.json")
    assert report["passed"] is True and report["invalid_rows"] == 3
    assert report["problems_by_rule"]["duplicate key transaction_id"] == 2
    assert not errors_logged(capsys.readouterr().out)


@pytest.mark.parametrize("shape", ["s3_notification", "eventbridge"])
def test_s3_and_eventbridge_events_are_accepted(s3: Any, data_bucket: str, shape: str) -> None:
    key = "incoming/2024-04-20/batch=1.csv"
    put(s3, data_bucket, key, batch_csv())
    if shape == "s3_notification":
        event = {
            "Records": [
                {"s3": {"bucket": {"name": data_bucket}, "object": {"key": "incoming/2024-04-20/batch%3D1.csv"}}}
            ]
        }
    else:
        event = {
            "detail-type": "Object Created",
            "source": "aws.s3",
            "detail": {"bucket": {"name": data_bucket}, "object": {"key": key}},
        }
    assert handler.lambda_handler(event, None)["status"] == "passed"


def test_failed_batch_writes_report_but_no_valid_rows(
    s3: Any, data_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = batch_csv().splitlines()
    bad = [lines[0]] + [line.replace(",0\n", ",9").rsplit(",", 1)[0] + ",7" for line in lines[1:]]
    put(s3, data_bucket, KEY, "\n".join(bad) + "\n")
    # An earlier, passing run of the same batch must not stay around looking current.
    put(s3, data_bucket, f"validated/{BATCH}/valid_rows.csv", "stale")

    result = handler.lambda_handler({"bucket": data_bucket, "key": KEY}, None)

    assert result["status"] == "failed" and "100.0% > allowed 20%" in result["reason"]
    assert f"validated/{BATCH}/valid_rows.csv" not in keys(s3, data_bucket)
    assert read_json(s3, data_bucket, f"reports/{BATCH}/validation.json")["passed"] is False
    warnings = [r for r in log_records(capsys.readouterr().out) if r.get("level") == "WARNING"]
    assert len(warnings) == 1 and "failed" in warnings[0]["message"]


BAD_FILES = {
    "malformed": ('transaction_id,card_id\n"tx_1,card_2\nx,y,z,w\n', "malformed CSV"),
    "ragged": (
        "\n".join(line + (",surplus,field" if n == 2 else "") for n, line in enumerate(batch_csv().splitlines())),
        "malformed CSV: line 3 has 10 fields, the header has 8",
    ),
    "unterminated_quote": (batch_csv().replace(",grocery,", ',"grocery,', 1), "malformed CSV"),
    "missing_column": (
        "\n".join(",".join(f for i, f in enumerate(line.split(",")) if i != 4) for line in batch_csv().splitlines()),
        "lacks required column(s) merchant_category",
    ),
    "empty": ("", "empty file"),
    "header_only": (batch_csv().splitlines()[0] + "\n", "no rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_return_an_error_and_leave_only_a_rejection_report(
    s3: Any, data_bucket: str, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    body, message = BAD_FILES[case]
    put(s3, data_bucket, KEY, body)
    # An earlier run's results for the batch must not stay beside the rejection.
    put(s3, data_bucket, f"validated/{BATCH}/valid_rows.csv", "stale")
    put(s3, data_bucket, f"quarantine/{BATCH}/invalid_rows.csv", "stale")

    result = handler.lambda_handler({"bucket": data_bucket, "key": KEY}, None)

    assert result["status"] == "error" and result["error"]["type"] == "BadInput"
    assert message in result["error"]["message"]
    report_key = f"reports/{BATCH}/validation.json"
    assert report_key in result["error"]["message"]
    assert keys(s3, data_bucket) == {KEY, report_key}  # the report where BatchRejected points, nothing else
    report = read_json(s3, data_bucket, report_key)
    assert report["passed"] is False and report["rejected"] == "file" and message in report["reason"]
    assert report["batch_id"] == BATCH and report["source"] == f"s3://{data_bucket}/{KEY}"
    errors = errors_logged(capsys.readouterr().out)
    assert len(errors) == 1 and message in errors[0]["message"] and errors[0]["error_type"] == "BadInput"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "event must be a JSON object"),
        ({"hello": "world"}, "not an S3 object reference"),
        ({"Records": []}, "exactly one S3 record"),
        ({"Records": [{"s3": {"bucket": {}}}]}, "lacks s3.bucket.name"),
        ({"detail": {"bucket": {"name": "b"}}}, "lacks detail.bucket.name or detail.object.key"),
        ({"bucket": "b", "key": "reports/x.json"}, "not a batch upload"),
    ],
)
def test_wrong_event_shapes_are_refused(event: Any, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = handler.lambda_handler(event, None)
    assert result == {"status": "error", "error": {"type": "BadEvent", "message": result["error"]["message"]}}
    assert message in result["error"]["message"]
    assert len(errors_logged(capsys.readouterr().out)) == 1


def test_missing_object_is_bad_input(s3: Any, data_bucket: str) -> None:
    result = handler.lambda_handler({"bucket": data_bucket, "key": "incoming/nothing.csv"}, None)
    assert result["error"]["type"] == "BadInput" and "does not exist" in result["error"]["message"]


def test_logs_are_json_and_cold_start_is_a_metric_once(
    s3: Any, data_bucket: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    put(s3, data_bucket, KEY, batch_csv())
    monkeypatch.setattr(runtime, "_cold_start", True)

    class Context:
        function_name = "lambda-ml-layers-test-data-validation"
        aws_request_id = "req-1"

    handler.lambda_handler({"bucket": data_bucket, "key": KEY}, Context())
    first = log_records(capsys.readouterr().out)
    handler.lambda_handler({"bucket": data_bucket, "key": KEY}, Context())
    second = log_records(capsys.readouterr().out)

    def cold_metrics(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if "_aws" in r and "ColdStart" in r]

    (metric,) = cold_metrics(first)
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LambdaMLPipeline"
    assert metric["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "ColdStart", "Unit": "Count"}]
    assert metric["function_name"] == "DataValidation" and metric["ColdStart"] == 1
    assert cold_metrics(second) == []
    done = [r for r in first + second if r.get("message") == "done"]
    assert [r["cold_start"] for r in done] == [True, False]
    for record in done:
        assert {"level", "location", "timestamp", "service", "function_request_id"} <= set(record)
        assert record["service"] == "data-validation" and record["function_request_id"] == "req-1"


def test_outputs_discard_removes_what_a_failed_invocation_wrote(s3: Any, data_bucket: str) -> None:
    outputs = runtime.Outputs(data_bucket)
    outputs.put("reports/x/validation.json", "{}", "application/json")
    outputs.put("validated/x/valid_rows.csv", "a\n1\n", "text/csv")
    assert len(keys(s3, data_bucket)) == 2
    assert sorted(outputs.discard()) == ["reports/x/validation.json", "validated/x/valid_rows.csv"]
    assert keys(s3, data_bucket) == set()
