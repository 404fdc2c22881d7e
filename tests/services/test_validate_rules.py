"""The schema check as a pure function: each rule, the schema loader, the pass/fail threshold."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_validation import schema, validate
from data_validation.runtime import BadInput
from svc_helpers import batch_csv

SCHEMA = schema.load_schema()
HEADER = "transaction_id,card_id,timestamp,amount,merchant_category,channel,distance_from_home_km,is_fraud"
GOOD = "tx_0000001,card_0001,2024-04-01T10:00:00Z,12.50,grocery,in_store,3.2,0"


def run(*rows: str, header: str = HEADER) -> validate.Result:
    return validate.validate("\n".join([header, *rows]).encode(), SCHEMA)


def test_good_row_is_typed() -> None:
    result = run(GOOD)
    assert result.passed and result.report["valid_rows"] == 1 and result.invalid.empty
    row = result.valid.iloc[0]
    assert row["amount"] == 12.5 and str(row["timestamp"]) == "2024-04-01 10:00:00+00:00"
    assert row["is_fraud"] == 0


@pytest.mark.parametrize(
    ("row", "finding"),
    [
        ("tx_0000002,card_0001,2024-04-01T10:00:00Z,,grocery,in_store,3.2,0", "amount: missing value"),
        ("tx_0000002,card_0001,2024-04-01T10:00:00Z,abc,grocery,in_store,3.2,0", "amount: not a float"),
        ("tx_0000002,card_0001,2024-04-01T10:00:00Z,-4,grocery,in_store,3.2,0", "amount: below minimum 0.01"),
        ("tx_0000002,card_0001,2024-04-01T10:00:00Z,60000,grocery,in_store,3.2,0", "amount: above maximum"),
        (
            "tx_0000002,card_0001,2024-04-01T10:00:00Z,5,casino,in_store,3.2,0",
            "merchant_category: not an allowed value",
        ),
        ("tx_0000002,card_0001,2024-04-01T10:00:00Z,5,grocery,fax,3.2,0", "channel: not an allowed value"),
        ("tx_0000002,card 1,2024-04-01T10:00:00Z,5,grocery,in_store,3.2,0", "card_id: does not match pattern"),
        ("tx_0000002,card_0001,yesterday,5,grocery,in_store,3.2,0", "timestamp: not a datetime"),
        ("tx_0000002,card_0001,2024-04-01T10:00:00Z,5,grocery,in_store,3.2,2", "is_fraud: not an allowed value"),
        ("tx_0000002,card_0001,2024-04-01T10:00:00Z,5,grocery,in_store,3.2,0.5", "is_fraud: not a whole number"),
        (GOOD, "transaction_id, : duplicate key"),
    ],
)
def test_each_rule_quarantines_the_row_with_its_reason(row: str, finding: str) -> None:
    result = run(GOOD, *[GOOD.replace("tx_0000001", f"tx_00001{i:02d}") for i in range(10)], row)
    errors = "; ".join(result.invalid[validate.ERRORS_COLUMN])
    if "duplicate" in finding:
        # Both rows sharing the key are quarantined: which one is right cannot be told.
        assert len(result.invalid) == 2 and "duplicate key transaction_id" in errors
    else:
        assert len(result.invalid) == 1 and finding in errors
        assert result.invalid.iloc[0]["transaction_id"] == "tx_0000002"  # the row as received
    assert result.passed  # 1-2 bad rows of 12 is under the 20% threshold


def test_label_column_is_optional_for_scoring_batches() -> None:
    result = validate.validate(batch_csv(drop_label=True).encode(), SCHEMA)
    assert result.passed and result.report["invalid_rows"] == 0
    assert "is_fraud" not in result.valid.columns


def test_too_many_invalid_rows_fail_the_batch() -> None:
    bad = GOOD.replace("12.50", "-1")
    result = run(GOOD, *[bad.replace("tx_0000001", f"tx_00002{i:02d}") for i in range(3)])
    assert not result.passed
    assert result.report["invalid_rows"] == 3 and "75.0% > allowed 20%" in result.report["reason"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty file"),
        (b"  \n\n", "empty file"),
        (HEADER.encode() + b"\n", "header but no rows"),
        (f"{HEADER}\n{GOOD},extra,fields\n".encode(), "malformed CSV"),
        (b"\xff\xfe\x00garbage\x00\x81", "not UTF-8"),
        (b"amount,amount\n1,2\n", "malformed CSV"),
        (HEADER.replace(",channel", "").encode() + b"\n", "lacks required column(s) channel"),
    ],
)
def test_unusable_files_are_bad_input(body: bytes, message: str) -> None:
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate.validate(body, SCHEMA)


def test_schema_loader_refuses_unknown_keys(tmp_path: Path) -> None:
    bad = tmp_path / "schema.toml"
    bad.write_text(
        'max_invalid_fraction = 0.1\nkey = ["id"]\n[[columns]]\nname = "id"\ndtype = "string"\nnulable = true\n'
    )
    with pytest.raises(ValueError, match=r"unknown keys \['nulable'\]"):
        schema.load_schema(bad)


def test_committed_sample_passes_cleanly() -> None:
    from svc_helpers import SAMPLE

    result = validate.validate(SAMPLE.read_bytes(), SCHEMA)
    assert result.passed and result.report["invalid_rows"] == 0 and result.report["rows"] > 3000


def test_keys_repeated_across_blocks_are_judged_as_in_one_block() -> None:
    """A streamed upload is checked 50,000 rows at a time; a key repeated in another block is
    confirmed in a second pass (blocks.DuplicateKeys) and reported exactly as if in one block."""
    header, *rows = batch_csv(drop_label=True).splitlines()
    rows += [rows[3], rows[150], rows[150].replace(",in_store,", ",fax,").replace(",online,", ",fax,")]
    body = "\n".join([header, *rows]) + "\n"

    whole = validate.validate(body, SCHEMA)
    blocks = validate.validate(body, SCHEMA, block_rows=40)

    assert whole.report["problems_by_rule"]["duplicate key transaction_id"] == 5
    assert blocks.report == whole.report
    by_id = ["transaction_id", validate.ERRORS_COLUMN]
    assert sorted(blocks.invalid[by_id].itertuples(index=False)) == sorted(whole.invalid[by_id].itertuples(index=False))
    assert (
        blocks.valid.sort_values("transaction_id")
        .reset_index(drop=True)
        .equals(whole.valid.sort_values("transaction_id").reset_index(drop=True))
    )
