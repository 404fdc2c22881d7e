"""Per-card transaction history kept outside the batch, in the DynamoDB table the template
creates (CardHistoryTable; its name in CARD_HISTORY_TABLE).

Items: partition key card_id, sort key transaction_id (so writing a transaction again, from a
re-run or an identical re-upload, replaces the same item: updates are idempotent per
transaction id), with `ts_key` = "<ISO timestamp>#<transaction_id>" sorted by the local index
`by_time`, and `amount` stored as the decimal text of the float it was read as (exact).

For a batch, each card needs only what its features look back to (features.py): the HISTORY
transactions before the batch's first one (median, time since previous) and everything from
24 hours before that first one to the batch's last (rolling 24 h count and sum).
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from .features import HISTORY, HISTORY_COLUMNS, WINDOW
from .runtime import ArtifactError

INDEX = "by_time"
# Two queries per card: run them side by side (they wait on the network, not the CPU), so a
# batch of thousands of cards takes seconds, not minutes.
QUERY_THREADS = 16
WRITE_BATCH = 25  # BatchWriteItem's maximum
MAX_WRITE_ATTEMPTS = 8
_ISO = "%Y-%m-%dT%H:%M:%SZ"


def table_name() -> str:
    name = os.environ.get("CARD_HISTORY_TABLE")
    if not name:
        raise ArtifactError("CARD_HISTORY_TABLE is not set in the function's environment (see infra/template.yaml)")
    return name


@functools.cache
def _client() -> Any:
    """One low-level client per container: clients are thread-safe (resources are not)."""
    import boto3

    return boto3.client("dynamodb")


def _ts_key(timestamp: pd.Timestamp, transaction_id: str) -> str:
    return f"{timestamp.strftime(_ISO)}#{transaction_id}"


def load(frame: pd.DataFrame) -> pd.DataFrame:
    """The stored transactions the batch's per-card features look back to (HISTORY_COLUMNS)."""
    spans = frame.groupby("card_id", sort=False)["timestamp"].agg(["min", "max"])
    with ThreadPoolExecutor(QUERY_THREADS) as pool:
        found = pool.map(_card_history, spans.index, spans["min"], spans["max"])
        items = [item for card_items in found for item in card_items]
    if not items:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    history = pd.DataFrame(
        {
            "transaction_id": [i["transaction_id"] for i in items],
            "card_id": [i["card_id"] for i in items],
            "timestamp": pd.to_datetime([i["ts_key"].split("#", 1)[0] for i in items], utc=True, format=_ISO),
            "amount": [float(i["amount"]) for i in items],
        }
    )
    return history.drop_duplicates("transaction_id").reset_index(drop=True)


def _card_history(card: str, first: pd.Timestamp, last: pd.Timestamp) -> list[dict[str, str]]:
    start = _ts_key(first, "")  # '#' sorts before any id character: all of 'first' is included
    items = _query(card, "ts_key < :a", {":a": start}, backwards=True, limit=HISTORY)
    window = {":a": _ts_key(first - WINDOW, ""), ":b": _ts_key(last, "\uffff")}
    return items + _query(card, "ts_key BETWEEN :a AND :b", window)


def _query(
    card: str, condition: str, values: dict[str, str], backwards: bool = False, limit: int | None = None
) -> list[dict[str, str]]:
    """Items as {attribute: text} (all four attributes are strings or decimal numbers)."""
    args: dict[str, Any] = {
        "TableName": table_name(),
        "IndexName": INDEX,
        "KeyConditionExpression": f"card_id = :card AND {condition}",
        "ExpressionAttributeValues": {name: {"S": v} for name, v in {":card": card, **values}.items()},
        "ScanIndexForward": not backwards,
    }
    if limit:
        args["Limit"] = limit
    found: list[dict[str, str]] = []
    while True:
        page = _client().query(**args)
        found += [{name: next(iter(typed.values())) for name, typed in item.items()} for item in page["Items"]]
        if limit or "LastEvaluatedKey" not in page:
            return found
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def record(frame: pd.DataFrame) -> int:
    """Store the batch's transactions (idempotent: one item per card and transaction id), in
    BatchWriteItem calls of 25 (DynamoDB's maximum) sent side by side."""
    requests = [
        {
            "PutRequest": {
                "Item": {
                    "card_id": {"S": card},
                    "transaction_id": {"S": tx},
                    "ts_key": {"S": _ts_key(ts, tx)},
                    "amount": {"N": repr(float(amount))},  # exact: the float's shortest decimal text
                }
            }
        }
        # One put per transaction id: a batch that repeats one would make BatchWriteItem refuse the call.
        for tx, card, ts, amount in frame[HISTORY_COLUMNS].drop_duplicates("transaction_id").itertuples(index=False)
    ]
    chunks = [requests[i : i + WRITE_BATCH] for i in range(0, len(requests), WRITE_BATCH)]
    with ThreadPoolExecutor(QUERY_THREADS) as pool:
        list(pool.map(_write, chunks))
    return len(requests)


def _write(requests: list[dict[str, Any]]) -> None:
    """One BatchWriteItem, resending what DynamoDB leaves unprocessed (throttling) with backoff."""
    name = table_name()
    for attempt in range(MAX_WRITE_ATTEMPTS):
        left = _client().batch_write_item(RequestItems={name: requests}).get("UnprocessedItems", {}).get(name)
        if not left:
            return
        requests = left
        time.sleep(min(2.0, 0.05 * 2**attempt))
    raise ArtifactError(
        f"DynamoDB table {name} left {len(requests)} card-history writes unprocessed after "
        f"{MAX_WRITE_ATTEMPTS} attempts (throttled): rerun the batch from FeatureEngineering"
    )
