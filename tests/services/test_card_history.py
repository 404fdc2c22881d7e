"""Per-card history outside the batch (issue 10, item 2): a transaction's features and score do
not depend on how the transactions were split into batches."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest
from data_validation import handler as validation
from feature_engineering import card_history, features
from feature_engineering import handler as feature_engineering
from predictions import handler as predictions
from svc_helpers import batch_csv, create_card_history_table, put

ROWS = batch_csv(first_day="2024-04-08", days=4, drop_label=True)


def chronological_batches(csv: str, count: int) -> list[str]:
    header, *rows = csv.splitlines()
    rows.sort(key=lambda r: r.split(",")[2])  # as uploads arrive: in time order
    return ["\n".join([header, *chunk]) + "\n" for chunk in np.array_split(np.array(rows, dtype=object), count)]


def test_features_with_history_equal_features_of_one_frame() -> None:
    frame = features.parse_validated(pd.read_csv(io.StringIO(ROWS), dtype=str))
    whole = features.build_features(frame).set_index("transaction_id").sort_index()
    parts, seen = [], frame.iloc[0:0][features.HISTORY_COLUMNS]
    for chunk in chronological_batches(ROWS, 7):
        batch = features.parse_validated(pd.read_csv(io.StringIO(chunk), dtype=str))
        parts.append(features.build_features(batch, history=seen))
        seen = pd.concat([seen, batch[features.HISTORY_COLUMNS]], ignore_index=True)
    split = pd.concat(parts).set_index("transaction_id").sort_index()
    pd.testing.assert_frame_equal(split[features.NUMERIC], whole[features.NUMERIC], check_dtype=False)


def test_history_rows_of_the_batch_itself_are_ignored() -> None:
    """A re-run finds its own transactions in the table: they must not count twice."""
    frame = features.parse_validated(pd.read_csv(io.StringIO(ROWS), dtype=str))
    again = features.build_features(frame, history=frame[features.HISTORY_COLUMNS])
    pd.testing.assert_frame_equal(again, features.build_features(frame))


def score(s3: Any, bucket: str, batches: list[str]) -> pd.DataFrame:
    out = []
    for n, body in enumerate(batches):
        key = f"incoming/split/{len(batches)}-{n:02d}.csv"
        put(s3, bucket, key, body)
        validated = validation.lambda_handler({"bucket": bucket, "key": key}, None)
        scored = predictions.lambda_handler(feature_engineering.lambda_handler(validated, None), None)
        assert scored["status"] == "ok", scored
        body = s3.get_object(Bucket=bucket, Key=f"predictions/split/{len(batches)}-{n:02d}/predictions.csv")["Body"]
        out.append(pd.read_csv(io.BytesIO(body.read()), dtype={"transaction_id": str, "card_id": str}))
    return pd.concat(out).set_index("transaction_id").sort_index()


def test_same_transactions_score_identically_in_1_5_and_20_batches(
    s3: Any, data_bucket: str, uploaded_model: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = {}
    for count in (1, 5, 20):
        # Each way of batching starts from an empty history, as a fresh deployment would.
        monkeypatch.setenv("CARD_HISTORY_TABLE", create_card_history_table(moto_endpoint))
        results[count] = score(s3, data_bucket, chronological_batches(ROWS, count))

    assert len(results[1]) == ROWS.count("\n") - 1
    assert results[1]["fraud_score"].nunique() > 10  # the scores vary: equality below means something
    for count in (5, 20):
        pd.testing.assert_frame_equal(results[count], results[1])


def test_recording_is_idempotent_per_batch(card_history_table: str) -> None:
    frame = features.parse_validated(pd.read_csv(io.StringIO(ROWS), dtype=str))
    card_history.record(frame, "b1")
    card_history.record(frame, "b1")  # a re-run of the same batch rewrites the same items

    stored = card_history.load(frame)
    assert len(stored) == len(frame) and stored["transaction_id"].is_unique
    merged = frame.merge(stored, on="transaction_id", suffixes=("", "_stored"))
    assert (merged["amount"] == merged["amount_stored"]).all()  # exact, not rounded
    assert (merged["timestamp"] == merged["timestamp_stored"]).all()


@pytest.mark.parametrize("per_batch", ["day", "transaction"])
def test_a_card_with_long_history_reads_only_what_its_features_need(card_history_table: str, per_batch: str) -> None:
    """Many earlier batches of one card: the query stops once the window and the last HISTORY
    transactions before the batch are covered, and those are the right ones. Batches of a day
    (8 transactions an item) are covered by the first page; batches of one transaction need
    more items than the first page holds."""
    start = pd.Timestamp("2024-01-01", tz="UTC")
    earlier = pd.DataFrame(
        {
            "transaction_id": [f"t{n:04d}" for n in range(300)],
            "card_id": "c1",
            "timestamp": [start + pd.Timedelta(hours=3 * n) for n in range(300)],
            "amount": [float(n + 1) for n in range(300)],
            "distance_from_home_km": 1.0,
        }
    )
    batch_of = earlier["timestamp"].dt.date.astype(str) if per_batch == "day" else earlier["transaction_id"]
    for batch, rows in earlier.groupby(batch_of):
        card_history.record(rows, f"b-{batch}")
    batch = earlier.iloc[:1].assign(transaction_id="new", timestamp=start + pd.Timedelta(hours=3 * 300))

    loaded = card_history.load(batch)

    assert len(loaded) < 40  # 8 transactions a day: a few days' items, not all 38 days
    needed = earlier[earlier["timestamp"] >= batch["timestamp"].iloc[0] - features.WINDOW]
    assert set(needed["transaction_id"]) | set(earlier["transaction_id"].iloc[-features.HISTORY :]) <= set(
        loaded["transaction_id"]
    )
    with_history = features.build_features(batch, history=loaded)
    with_everything = features.build_features(batch, history=earlier)
    pd.testing.assert_frame_equal(with_history, with_everything)


def stored_items(table: str) -> list[dict[str, Any]]:
    import boto3

    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    return sorted(
        (item for page in pages for item in page["Items"]), key=lambda i: (i["card_id"]["S"], i["batch_part"]["S"])
    )


def test_chunks_of_one_batch_recorded_in_parallel_equal_the_whole_batch(card_history_table: str) -> None:
    """The fan-out records each chunk (its own cards) of one batch at the same time: the table ends
    as if the batch were recorded whole, and a re-upload chunked differently replaces the same items."""
    frame = features.parse_validated(pd.read_csv(io.StringIO(ROWS), dtype=str))
    by_card = pd.util.hash_pandas_object(frame["card_id"], index=False)
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda n: card_history.record(frame[by_card % 3 == n], "fan"), range(3)))
    chunked = stored_items(card_history_table)
    card_history.record(frame, "fan")  # the same batch, one chunk
    assert stored_items(card_history_table) == chunked
    card_history.record(frame[by_card % 2 == 0], "fan")  # re-uploaded, two chunks this time
    card_history.record(frame[by_card % 2 == 1], "fan")
    assert stored_items(card_history_table) == chunked
    assert len(chunked) == frame["card_id"].nunique()


def test_items_hold_each_card_in_time_order_and_split_at_part_size(
    card_history_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(card_history, "PART_SIZE", 7)
    frame = features.parse_validated(pd.read_csv(io.StringIO(ROWS), dtype=str)).sample(frac=1, random_state=3)
    card_history.record(frame, "parts")
    items = stored_items(card_history_table)
    for card, rows in frame.groupby("card_id"):
        parts = [i for i in items if i["card_id"]["S"] == card]
        stored = [entry for part in parts for entry in json.loads(part["transactions"]["S"])]
        expected = rows.sort_values(["timestamp", "transaction_id"])
        assert [tx for _, tx, _ in stored] == expected["transaction_id"].tolist()
        assert [float(amount) for _, _, amount in stored] == expected["amount"].tolist()
        assert [len(json.loads(p["transactions"]["S"])) for p in parts][:-1] == [7] * (len(parts) - 1)
        assert all(p["last_key"]["S"].startswith(json.loads(p["transactions"]["S"])[-1][0]) for p in parts)


def test_the_client_keeps_a_connection_per_query_thread(moto_endpoint: str) -> None:
    """Fewer pooled connections than threads: urllib3 discards one (a stray warning log line,
    and a new TLS connection on AWS) on nearly every query of a large batch."""
    assert card_history._client().meta.config.max_pool_connections >= card_history.QUERY_THREADS


def test_items_stay_under_dynamodb_s_400_kb_with_the_longest_ids(card_history_table: str) -> None:
    """Ids may be 128 characters (schema.DEFAULT_ID_PATTERN): PART_SIZE transactions of a card
    would then make one item of about 700 KB, which DynamoDB (and moto) refuse."""
    start = pd.Timestamp("2024-05-01", tz="UTC")
    rows = card_history.PART_SIZE + 10
    frame = pd.DataFrame(
        {
            "transaction_id": [f"{n:0128d}" for n in range(rows)],
            "card_id": "c" * 128,
            "timestamp": [start + pd.Timedelta(seconds=n) for n in range(rows)],
            "amount": [1234567.891 + n for n in range(rows)],
        }
    )
    written = card_history.record(frame, "b" * 200)

    items = stored_items(card_history_table)
    assert written == len(items) > 2
    assert max(len(json.dumps(item)) for item in items) < 400_000
    later = frame.iloc[-1:].assign(transaction_id="new", timestamp=start + pd.Timedelta(days=1))
    assert set(frame["transaction_id"].iloc[-features.HISTORY :]) <= set(card_history.load(later)["transaction_id"])


def test_out_of_order_counts_rows_before_their_cards_newest_stored_second() -> None:
    """Stored times are whole seconds: a row later within that second is in order, one before
    it is late; a card with nothing stored is never late."""
    frame = pd.DataFrame(
        {
            "card_id": ["a", "a", "a", "b", "c"],
            "timestamp": pd.to_datetime(
                [
                    "2024-04-08T10:00:00.500Z",
                    "2024-04-08T09:59:59.999Z",
                    "2024-04-08T10:00:00Z",
                    "2024-01-01T00:00:00Z",
                    "2024-04-09T00:00:00Z",
                ],
                utc=True,
                format="ISO8601",
            ),
        }
    )
    stored = card_history.StoredHistory(
        pd.DataFrame(columns=features.HISTORY_COLUMNS),
        newest={"a": "2024-04-08T10:00:00Z", "c": "2024-04-09T00:00:01Z"},
        later={"a": frozenset({"batch-2"}), "c": frozenset({"batch-3"})},
    )
    assert card_history.out_of_order(frame, stored) == {
        "rows": 2,
        "cards": 2,
        "later_batches": ["batch-2", "batch-3"],
        "later_batch_count": 2,
    }
    nothing_stored = card_history.StoredHistory(stored.transactions, newest={}, later={})
    assert card_history.out_of_order(frame, nothing_stored)["rows"] == 0
