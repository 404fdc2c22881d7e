"""The "done" marker tells what became of every uploaded row (issue 21, item 3): summary.json and
the execution's output (Merge's result) carry uploaded, scored and quarantined row counts and the
quarantine key; a file split by another delimiter than a comma is refused naming it.

Handlers in-process against a moto server over HTTP, the Map played with the template's
ItemSelector fields (test_history_revisions.RUN_FIELDS)."""

from __future__ import annotations

from typing import Any

import pytest
from data_validation import handler as validation
from svc_helpers import batch_csv, read_json
from test_history_revisions import new_stage, run_pipeline, upload

BODY = batch_csv(first_day="2024-04-10", days=4, drop_label=True)


def with_bad_rows(body: str, count: int) -> str:
    header, *rows = body.splitlines()
    bad = [row.replace(",in_store,", ",fax,").replace(",online,", ",fax,").replace(",atm,", ",fax,") for row in rows]
    return "\n".join([header, *bad[:count], *rows[count:]]) + "\n"


@pytest.mark.parametrize("chunks", [1, 3])
def test_summary_and_execution_output_account_for_every_uploaded_row(
    s3: Any, uploaded_model: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, chunks: int
) -> None:
    body = with_bad_rows(BODY, 7)
    uploaded = body.count("\n") - 1
    if chunks > 1:
        monkeypatch.setenv("CHUNK_TARGET_BYTES", str(len(body) // chunks + 1))
    bucket = new_stage(s3, moto_endpoint, monkeypatch)

    output = run_pipeline(upload(s3, bucket, "counted", body))

    summary = read_json(s3, bucket, "predictions/counted/summary.json")
    expected = {
        "uploaded_rows": uploaded,
        "scored_rows": uploaded - 7,
        "quarantined_rows": 7,
        "quarantine_key": "quarantine/counted/invalid_rows.csv",
    }
    assert output["chunks"] == chunks
    assert {name: summary[name] for name in expected} == expected == {name: output[name] for name in expected}
    assert summary["rows"] == uploaded - 7  # the old field: scored rows, unchanged
    quarantine = s3.get_object(Bucket=bucket, Key=expected["quarantine_key"])["Body"].read().decode()
    assert quarantine.count("\n") - 1 == 7


def test_a_clean_upload_names_no_quarantine(
    s3: Any, uploaded_model: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = new_stage(s3, moto_endpoint, monkeypatch)
    output = run_pipeline(upload(s3, bucket, "clean", BODY))
    summary = read_json(s3, bucket, "predictions/clean/summary.json")
    rows = BODY.count("\n") - 1
    for found in (summary, output):
        assert (found["uploaded_rows"], found["scored_rows"], found["quarantined_rows"]) == (rows, rows, 0)
        assert found["quarantine_key"] is None


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab")])
def test_a_file_split_by_another_delimiter_is_refused_naming_it(
    s3: Any, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, delimiter: str, name: str
) -> None:
    # Excel's European CSV: semicolons between fields, decimal commas in the amounts.
    lines = [line.replace(",", delimiter) for line in BODY.splitlines()]
    lines[1:] = [line.replace(".", ",") for line in lines[1:]]
    bucket = new_stage(s3, moto_endpoint, monkeypatch)

    result = validation.lambda_handler(upload(s3, bucket, "european", "\n".join(lines) + "\n"), None)

    message = result["error"]["message"]
    assert result["status"] == "error" and f"the batch is {name}-delimited" in message, message
    assert "comma-separated" in message and "lacks required column" not in message
    assert read_json(s3, bucket, "reports/european/validation.json")["reason"].startswith(f"the batch is {name}")
