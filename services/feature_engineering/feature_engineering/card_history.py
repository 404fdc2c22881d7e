"""Per-card transaction history kept outside the batch, in the DynamoDB table the template
creates (CardHistoryTable; its name in CARD_HISTORY_TABLE).

One item per card, batch and upload revision (partition key card_id, sort key `batch_part` =
"<batch_id>#<revision>#<part>", and the same as attributes `batch_id` and `revision`), holding that
upload's transactions of the card as JSON [[timestamp, transaction_id, amount], ...] (amount as
the float's shortest decimal text: exact). A re-run of the same upload rewrites the same items
(idempotent); another upload of the batch writes items of its own, and only the batch's current
revision counts when history is read (batch_history.py), so a superseded, failed or corrected
upload's transactions stop counting as soon as the newer upload takes over, even while its chunks
still write. Reading skips the batch's own items (its rows are in the batch) and drops repeated
transaction ids (features.py), so nothing counts twice. The local index `by_time` orders a card's
items by `last_key` = "<latest timestamp>#<batch_part>".

For a batch, each card needs only what its features look back to (features.py): the HISTORY
transactions before the batch's first one (median, time since previous) and everything from 24
hours before that first one on (rolling count and sum). One query per card, newest items first,
stops as soon as both are covered. Compared with an item per transaction this makes one write per
card and batch instead of one per transaction (the write calls were most of the time).
"""

from __future__ import annotations

import functools
import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .batch_history import RevisionCache, client, table_name
from .features import HISTORY, HISTORY_COLUMNS, WINDOW
from .runtime import ArtifactError

INDEX = "by_time"
# One query per card, run side by side (they wait on the network, not the CPU); the client
# keeps a pooled connection per thread (batch_history.POOL_CONNECTIONS).
QUERY_THREADS = 16
# Items per query page. Most cards are covered by their newest 2-3 items (the stop rule looks at
# one item past what it needs), so the first page is small: a page of 25 made moto copy and send,
# and boto3 parse, up to 25 items where 3 do (a third of load()'s time with 10 items per card);
# on DynamoDB a query's read units grow with the bytes it reads. A card of many small batches
# reads on in pages of 25.
FIRST_PAGE = 4
PAGE = 25
WRITE_BATCH = 25  # BatchWriteItem's maximum
MAX_WRITE_ATTEMPTS = 8
# DynamoDB items are at most 400 KB; a transaction takes about 60 bytes of JSON with the sample's
# ids, up to about 300 with 128-character ids (schema.DEFAULT_ID_PATTERN allows that): a part
# holds at most PART_SIZE transactions and PART_BYTES of JSON, the rest of the item is its keys.
PART_SIZE = 4000
PART_BYTES = 300_000
_ISO = "%Y-%m-%dT%H:%M:%SZ"


# The client's pool (batch_history.client) holds a connection per query thread.
_client = client


@dataclass(frozen=True)
class StoredHistory:
    """What the table holds for a batch's cards: the transactions their features look back to
    (HISTORY_COLUMNS); per card, its newest stored transaction time (ISO text; cards with none
    left out) and the batches whose stored transactions are newer than the card's first row in
    this batch. Together they tell an upload that arrived out of time order (out_of_order)."""

    transactions: pd.DataFrame
    newest: dict[str, str]
    later: dict[str, frozenset[str]]


class _CardRead(NamedTuple):
    rows: list[tuple[str, str, str, str]]
    newest: str | None
    later: frozenset[str]


def read(frame: pd.DataFrame, batch_id: str | None = None) -> StoredHistory:
    """The stored transactions of `frame`'s cards that count: other batches' items recorded by
    their batch's current upload revision (batch_id's own items never count: its rows are in
    the frame, and an earlier upload of it has been replaced by this one)."""
    firsts = frame.groupby("card_id", sort=False)["timestamp"].min()
    revisions = RevisionCache()
    with ThreadPoolExecutor(QUERY_THREADS) as pool:
        found = list(pool.map(functools.partial(_card_history, batch_id, revisions), firsts.index, firsts.to_list()))
    newest = {card: got.newest for card, got in zip(firsts.index, found, strict=True) if got.newest is not None}
    later = {card: got.later for card, got in zip(firsts.index, found, strict=True) if got.later}
    rows = [row for got in found for row in got.rows]
    if not rows:
        return StoredHistory(pd.DataFrame(columns=HISTORY_COLUMNS), newest, later)
    card, ts, tx, amount = zip(*rows, strict=True)
    history = pd.DataFrame(
        {
            "transaction_id": tx,
            "card_id": card,
            "timestamp": pd.to_datetime(list(ts), utc=True, format=_ISO),
            "amount": [float(a) for a in amount],
        }
    )
    return StoredHistory(history.drop_duplicates("transaction_id").reset_index(drop=True), newest, later)


# Later batches named in a summary at most (the counts are exact; the names are what to re-upload).
MAX_NAMED_BATCHES = 20


def out_of_order(frame: pd.DataFrame, stored: StoredHistory) -> dict[str, Any]:
    """The batch's rows older than their card's newest stored transaction: the time-order rule
    (docs/pipeline.md) says such a row is scored right, but the later transactions already scored
    were scored without it. {"rows", "cards", "later_batches": names to upload again (at most
    MAX_NAMED_BATCHES), "later_batch_count"}."""
    # Each card's newest time parsed once; the rows' own timestamps compared as they are (stored
    # times are whole seconds, so `ts < newest` is what comparing the rows' ISO text said).
    newest_at = pd.to_datetime(pd.Series(stored.newest, dtype=object), utc=True, format=_ISO)
    newest = newest_at.reindex(frame["card_id"]).set_axis(frame.index)  # NaT: nothing stored, never late
    late = frame["timestamp"] < newest
    cards = frame.loc[late, "card_id"].unique().tolist()
    batches = sorted(set().union(*(stored.later.get(card, frozenset()) for card in cards)))
    return {
        "rows": int(late.sum()),
        "cards": len(cards),
        "later_batches": batches[:MAX_NAMED_BATCHES],
        "later_batch_count": len(batches),
    }


def load(frame: pd.DataFrame, batch_id: str | None = None) -> pd.DataFrame:
    """The stored transactions the batch's per-card features look back to (HISTORY_COLUMNS)."""
    return read(frame, batch_id).transactions


def item_source(item: dict[str, Any]) -> tuple[str, str | None]:
    """(batch_id, revision) of a history item; revision None for an item recorded before
    revisions were kept (its sort key was "<batch_id>#<part>")."""
    if "batch_id" in item:
        return item["batch_id"]["S"], item["revision"]["S"]
    return item["batch_part"]["S"].rsplit("#", 1)[0], None


def _card_history(own_batch: str | None, revisions: RevisionCache, card: str, first: pd.Timestamp) -> _CardRead:
    """(card, timestamp, transaction_id, amount) of the card's counting items, newest first, until
    HISTORY transactions before `first` are found and items older than first - WINDOW begin; the
    newest counting item's latest transaction time, and the batches of items newer than `first`
    (all of them are read: the stop rule needs items before the window)."""
    first_text, window_start = first.strftime(_ISO), (first - WINDOW).strftime(_ISO)
    args: dict[str, Any] = {
        "TableName": table_name(),
        "IndexName": INDEX,
        "KeyConditionExpression": "card_id = :card",
        "ExpressionAttributeValues": {":card": {"S": card}},
        "ScanIndexForward": False,
        "Limit": FIRST_PAGE,
    }
    rows: list[tuple[str, str, str, str]] = []
    newest: str | None = None
    later: set[str] = set()
    while True:
        page = _client().query(**args)
        sources = [item_source(item) for item in page["Items"]]
        revisions.resolve(batch for batch, _ in sources if batch != own_batch)
        for item, (batch, revision) in zip(page["Items"], sources, strict=True):
            if batch == own_batch or not revisions.counts(batch, revision):
                continue  # withdrawn by a newer upload of its batch, or this batch's own
            # Items come by their latest transaction, newest first, so this item and every later
            # one hold only transactions at or before `latest`. Once that is before the window,
            # and HISTORY transactions after `latest` but before `first` are in hand (so they are
            # the HISTORY latest before `first`), nothing further is needed.
            latest = item["last_key"]["S"].split("#", 1)[0]
            newest = newest or latest
            if latest > first_text:
                later.add(batch)
            if latest < window_start and sum(1 for r in rows if latest < r[1] < first_text) >= HISTORY:
                return _CardRead(rows, newest, frozenset(later))
            rows += [(card, ts, tx, amount) for ts, tx, amount in json.loads(item["transactions"]["S"])]
        if "LastEvaluatedKey" not in page:
            return _CardRead(rows, newest, frozenset(later))
        args.update(ExclusiveStartKey=page["LastEvaluatedKey"], Limit=PAGE)


def record(frame: pd.DataFrame, batch_id: str, revision: str = "") -> int:
    """Store the batch's transactions as recorded by upload `revision`: one item per card (and
    part), replacing what an earlier run of the same revision stored. Returns the number of items
    written."""
    requests = [{"PutRequest": {"Item": item}} for item in history_items(frame, batch_id, revision)]
    chunks = [requests[i : i + WRITE_BATCH] for i in range(0, len(requests), WRITE_BATCH)]
    with ThreadPoolExecutor(QUERY_THREADS) as pool:
        list(pool.map(_write, chunks))
    return len(requests)


def history_items(frame: pd.DataFrame, batch_id: str, revision: str = "") -> list[dict[str, Any]]:
    """The table items of a batch: per card, its transactions in (timestamp, transaction_id) order,
    PART_SIZE to an item. Columns are formatted once for the whole batch (a loop over the cards'
    rows took seconds per 100,000 rows)."""
    ordered = frame.sort_values(["card_id", "timestamp", "transaction_id"])
    cards = ordered["card_id"].to_numpy(dtype=object)
    entries = list(
        zip(
            ordered["timestamp"].dt.strftime(_ISO).tolist(),
            ordered["transaction_id"].tolist(),
            [repr(amount) for amount in ordered["amount"].astype(float).tolist()],  # shortest exact text
            strict=True,
        )
    )
    starts = [0, *(np.flatnonzero(cards[1:] != cards[:-1]) + 1).tolist(), len(cards)]
    items = []
    for first, end in itertools.pairwise(starts):
        for part, (latest, text) in enumerate(parts(entries[first:end])):
            # The revision in the key: two uploads of the batch never overwrite each other's item
            # (a superseded chunk writing late must not replace the newer upload's transactions).
            batch_part = f"{batch_id}#{revision}#{part:04d}"
            items.append(
                {
                    "card_id": {"S": cards[first]},
                    "batch_part": {"S": batch_part},
                    "batch_id": {"S": batch_id},
                    "revision": {"S": revision},
                    "last_key": {"S": f"{latest}#{batch_part}"},
                    "transactions": {"S": text},
                }
            )
    return items


def parts(entries: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """A card's entries, in order, as (latest timestamp, JSON array) parts of at most PART_SIZE
    entries and PART_BYTES characters (the JSON is ASCII: characters are bytes)."""
    found = []
    start = 0
    while start < len(entries):
        end = min(start + PART_SIZE, len(entries))
        text = json.dumps(entries[start:end], separators=(",", ":"))
        while len(text) > PART_BYTES and end - start > 1:  # long ids: fewer to a part
            end = start + max(1, (end - start) * PART_BYTES // len(text))
            text = json.dumps(entries[start:end], separators=(",", ":"))
        found.append((entries[end - 1][0], text))
        start = end
    return found


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
