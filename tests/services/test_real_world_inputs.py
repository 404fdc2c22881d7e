"""Uploads as real users make them (issue 10, items 4 and 5), through the DataValidation handler
against a moto server over HTTP: each accepted input is normalized and says so in the report;
each refused one leaves a rejection report where the state machine's BatchRejected points."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from data_validation import handler, schema, validate
from svc_helpers import batch_csv, keys, put, read_json

HEADER = "transaction_id,card_id,timestamp,amount,merchant_category,channel,distance_from_home_km,is_fraud"


def run(s3: Any, bucket: str, key: str, body: str | bytes) -> dict[str, Any]:
    put(s3, bucket, key, body)
    return handler.lambda_handler({"bucket": bucket, "key": key}, None)


# --- accepted, normalized, and said so -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "batch"),
    [
        ("incoming/2024-05-01/Batch 7 (1).csv", "2024-05-01/Batch 7 (1)"),
        ("incoming/Zürich Filiale: März.csv", "Zürich Filiale: März"),
        ("incoming/export.CSV", "export"),
    ],
)
def test_real_batch_names_are_accepted_verbatim(s3: Any, data_bucket: str, name: str, batch: str) -> None:
    result = run(s3, data_bucket, name, batch_csv())

    assert result["status"] == "passed" and result["batch_id"] == batch
    assert f"reports/{batch}/validation.json" in keys(s3, data_bucket)
    assert f"validated/{batch}/valid_rows.csv" in keys(s3, data_bucket)


def test_gzip_upload_is_decompressed_and_reported(s3: Any, data_bucket: str) -> None:
    csv = batch_csv()
    result = run(s3, data_bucket, "incoming/day 3.csv.gz", gzip.compress(csv.encode()))

    assert result["status"] == "passed" and result["rows"] == csv.count("\n") - 1
    report = read_json(s3, data_bucket, "reports/day 3/validation.json")
    assert report["normalized"]["input"] == ["decompressed gzip"]


def test_padded_capitalised_header_and_value_spellings_are_normalized(s3: Any, data_bucket: str) -> None:
    rows = batch_csv().splitlines()[1:]
    messy_header = " Transaction ID ,Card-ID,TIMESTAMP,Amount,Merchant Category,channel,distance_from_home_km,is_fraud"
    rows = [r.replace(",grocery,", ",Grocery,").replace(",online_retail,", ", Online Retail ,") for r in rows]
    changed = sum(1 for r in batch_csv().splitlines()[1:] if ",grocery," in r or ",online_retail," in r)
    assert changed > 0

    result = run(s3, data_bucket, "incoming/messy.csv", "\n".join([messy_header, *rows]) + "\n")

    assert result["status"] == "passed" and result["invalid_rows"] == 0
    report = read_json(s3, data_bucket, "reports/messy/validation.json")
    assert report["normalized"]["header"] == {
        " Transaction ID ": "transaction_id",
        "Card-ID": "card_id",
        "TIMESTAMP": "timestamp",
        "Amount": "amount",
        "Merchant Category": "merchant_category",
    }
    assert report["normalized"]["values"] == {"merchant_category": changed}
    valid = s3.get_object(Bucket=data_bucket, Key="validated/messy/valid_rows.csv")["Body"].read().decode()
    assert "Grocery" not in valid and "Online Retail" not in valid and ",grocery," in valid


def test_real_world_ids_pass_and_padding_around_them_is_trimmed(s3: Any, data_bucket: str) -> None:
    rows = [
        "9f1c2e7a-4b1d-4c55-9a0e-3f1d2b6c7e01,4111-XXXX-1234,2024-04-01T10:00:00Z,12.50,grocery,in_store,3.2,0",
        " TX:2024/000042 ,CARD#77,2024-04-01T11:00:00Z,8.00,fuel,in_store,1.0,0",
    ]

    result = run(s3, data_bucket, "incoming/ids.csv", "\n".join([HEADER, *rows]) + "\n")

    assert result["status"] == "passed" and result["invalid_rows"] == 0
    report = read_json(s3, data_bucket, "reports/ids/validation.json")
    assert report["normalized"]["values"] == {"transaction_id": 1}
    valid = s3.get_object(Bucket=data_bucket, Key="validated/ids/valid_rows.csv")["Body"].read().decode()
    assert "\nTX:2024/000042,CARD#77," in valid


def test_id_formats_come_from_configuration() -> None:
    strict = schema.load_schema(environ={"CARD_ID_PATTERN": r"^card_[0-9]{4}$"})
    rows = ["tx_1,card_0001,2024-04-01T10:00:00Z,5,fuel,atm,1,0", "tx_2,C-77,2024-04-01T10:00:00Z,5,fuel,atm,1,0"]
    body = "\n".join([HEADER, *rows]) + "\n"

    result = validate.validate(body, strict)

    assert list(result.invalid["transaction_id"]) == ["tx_2"]
    assert "card_id: does not match pattern" in result.invalid.iloc[0][validate.ERRORS_COLUMN]
    assert validate.validate(body, schema.load_schema(environ={})).report["invalid_rows"] == 0
    with pytest.raises(ValueError, match=r"CARD_ID_PATTERN='\[' is not a regular expression"):
        schema.load_schema(environ={"CARD_ID_PATTERN": "["})


def test_excel_windows_1252_export_is_read_and_reported(s3: Any, data_bucket: str) -> None:
    header, *rows = batch_csv().splitlines()
    # Excel's "CSV" on Windows: cp1252, here one byte (é) in a column the pipeline ignores.
    lines = [header + ",note", *(row + (",café" if n == 0 else ",") for n, row in enumerate(rows))]
    body = ("\r\n".join(lines) + "\r\n").encode("cp1252")

    result = run(s3, data_bucket, "incoming/excel.csv", body)

    assert result["status"] == "passed" and result["invalid_rows"] == 0
    report = read_json(s3, data_bucket, "reports/excel/validation.json")
    assert report["ignored_columns"] == ["note"]
    (note,) = report["normalized"]["input"]
    assert "not UTF-8" in note and "Windows-1252" in note


# --- refused, with a report where BatchRejected points ----------------------------------


def assert_rejected(s3: Any, bucket: str, result: dict[str, Any], report_key: str, message: str) -> dict[str, Any]:
    assert result["status"] == "error" and result["error"]["type"] == "BadInput"
    assert message in result["error"]["message"] and report_key in result["error"]["message"]
    report = read_json(s3, bucket, report_key)
    assert report["passed"] is False and report["rejected"] == "file" and message in report["reason"]
    assert not {k for k in keys(s3, bucket) if k.startswith(("validated/", "quarantine/"))}
    return report


@pytest.mark.parametrize(
    ("key", "report_key", "message"),
    [
        ("incoming/export.xlsx", "reports/export.xlsx/validation.json", "reads CSV only"),
        ("incoming/a/../b.csv", "reports/a/_/b/validation.json", "no empty, '.' or '..' part"),
        ("incoming/tab\there.csv", "reports/tab_here/validation.json", "printable characters"),
        ("incoming/back\\slash.csv", "reports/back\\slash/validation.json", "no backslash"),
    ],
)
def test_refused_names_leave_a_report(s3: Any, data_bucket: str, key: str, report_key: str, message: str) -> None:
    result = run(s3, data_bucket, key, batch_csv())
    report = assert_rejected(s3, data_bucket, result, report_key, message)
    assert report["source"] == f"s3://{data_bucket}/{key}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (batch_csv().encode("utf-16"), "NUL bytes: it is UTF-16 text"),
        (batch_csv().encode() + b"\x81\xc3", "neither UTF-8 nor Windows-1252"),
        (f"{HEADER.replace('amount', 'Amount')},amount\n".encode(), "are both column 'amount'"),
        (
            f"{HEADER.replace(',channel', '')}\ntx_1,c_1,2024-04-01T10:00:00Z,5,fuel,1,0\n".encode(),
            "lacks required column(s) channel",
        ),
    ],
)
def test_unreadable_files_leave_a_report(s3: Any, data_bucket: str, body: bytes, message: str) -> None:
    put(s3, data_bucket, "quarantine/bad/invalid_rows.csv", "stale")
    result = run(s3, data_bucket, "incoming/bad.csv", body)
    assert_rejected(s3, data_bucket, result, "reports/bad/validation.json", message)


@pytest.mark.parametrize(
    ("key", "body", "message"),
    [
        ("incoming/big.csv", batch_csv(), "over the 5,000-byte limit one invocation holds (MAX_BATCH_BYTES)"),
        # A small gzip that inflates past the limit is stopped while inflating.
        ("incoming/big.csv.gz", gzip.compress(batch_csv().encode()), "expands to more than 5,000 bytes"),
        ("incoming/big.csv.gz", gzip.compress(batch_csv().encode())[:-40], "truncated gzip"),
        ("incoming/big.csv.gz", b"not gzip at all", "not a valid gzip file"),
    ],
)
def test_too_big_or_broken_uploads_leave_a_report_naming_the_limit(
    s3: Any, data_bucket: str, monkeypatch: pytest.MonkeyPatch, key: str, body: bytes | str, message: str
) -> None:
    monkeypatch.setenv("MAX_BATCH_BYTES", "5000" if "truncated" not in message else "10000000")
    result = run(s3, data_bucket, key, body)
    assert_rejected(s3, data_bucket, result, "reports/big/validation.json", message)
