"""DynamoDB Query on the patched server answers exactly what stock moto answers.

`local_aws_fixes.dynamodb_queries` makes a Query read only its partition (stock moto 5.2.5 scans
and sorts the whole table each time; the time figures are in benchmarks/card_history.py, not
here). This compares the two servers over HTTP, page by page, on the same items: the
card-history table's shape (a local index whose sort key repeats, items without it, items large
enough to hit the 1 MB page), a global index on another attribute (still the full scan), and a
table with a number partition key and no sort key.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from lambda_ml_layers.local.moto_server import MotoServer

pytestmark = pytest.mark.emulator

CARDS = [f"card_{n:02d}" for n in range(7)]
S = "S"
HISTORY_SHAPE: dict[str, Any] = {
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": S} for name in ("card_id", "batch_part", "last_key", "merchant")
    ],
    "KeySchema": [{"AttributeName": "card_id", "KeyType": "HASH"}, {"AttributeName": "batch_part", "KeyType": "RANGE"}],
    "LocalSecondaryIndexes": [
        {
            "IndexName": "by_time",
            "KeySchema": [
                {"AttributeName": "card_id", "KeyType": "HASH"},
                {"AttributeName": "last_key", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "by_merchant",
            "KeySchema": [
                {"AttributeName": "merchant", "KeyType": "HASH"},
                {"AttributeName": "last_key", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
}
NUMBERS_SHAPE: dict[str, Any] = {
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [{"AttributeName": "n", "AttributeType": "N"}],
    "KeySchema": [{"AttributeName": "n", "KeyType": "HASH"}],
}


def history_items() -> list[dict[str, Any]]:
    """Items of the card-history shape, from a fixed seed: a card with none, cards with many,
    repeated index sort keys, items outside the index (no last_key), a card of big items."""
    rng = random.Random(7)
    items = []
    for card in CARDS[1:]:
        for batch in range(rng.randrange(1, 20)):
            item = {
                "card_id": {S: card},
                "batch_part": {S: f"b{batch:03d}#0000"},
                "merchant": {S: rng.choice(["m1", "m2", "m3"])},
                "amount": {"N": str(rng.randrange(1, 500))},
                "transactions": {S: "x" * rng.randrange(1, 200)},
            }
            if rng.random() > 0.1:  # the rest are not in by_time
                item["last_key"] = {S: f"2024-06-{rng.randrange(1, 9):02d}"}  # repeats on purpose
            items.append(item)
    for batch in range(4):  # 4 x 300 KB: a 1 MB page ends before Limit does
        items.append(
            {
                "card_id": {S: "card_big"},
                "batch_part": {S: f"b{batch:03d}#0000"},
                "last_key": {S: f"2024-07-{batch + 1:02d}"},
                "merchant": {S: "m1"},
                "transactions": {S: "y" * 300_000},
            }
        )
    return items


def queries() -> Iterator[dict[str, Any]]:
    """Query arguments covering directions, limits, key and filter conditions, projections."""
    for card in [*CARDS, "card_big", "card_missing"]:
        key = {"KeyConditionExpression": "card_id = :c", "ExpressionAttributeValues": {":c": {S: card}}}
        for forward in (True, False):
            for limit in (None, 1, 4):
                extra = {"Limit": limit} if limit else {}
                yield {"IndexName": "by_time", "ScanIndexForward": forward, **key, **extra}
            yield {"ScanIndexForward": forward, "Limit": 3, **key}
        yield {
            "IndexName": "by_time",
            "KeyConditionExpression": "card_id = :c AND last_key < :t",
            "ExpressionAttributeValues": {":c": {S: card}, ":t": {S: "2024-06-05"}},
            "ScanIndexForward": False,
            "Limit": 2,
        }
        yield {
            "IndexName": "by_time",
            "KeyConditionExpression": "card_id = :c AND last_key BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":c": {S: card}, ":a": {S: "2024-06-02"}, ":b": {S: "2024-06-06"}},
        }
        yield {
            "KeyConditionExpression": "card_id = :c AND begins_with(batch_part, :p)",
            "ExpressionAttributeValues": {":c": {S: card}, ":p": {S: "b00"}},
            "Limit": 4,
        }
        yield {
            "IndexName": "by_time",
            "FilterExpression": "amount > :a",
            "ProjectionExpression": "batch_part, amount",
            "ExpressionAttributeValues": {**key["ExpressionAttributeValues"], ":a": {"N": "200"}},
            "KeyConditionExpression": key["KeyConditionExpression"],
            "Limit": 5,
        }
        yield {"IndexName": "by_time", "Select": "COUNT", **key}
    for merchant in ("m1", "m2", "m9"):  # a global index on another attribute: not one partition
        yield {
            "IndexName": "by_merchant",
            "KeyConditionExpression": "merchant = :m",
            "ExpressionAttributeValues": {":m": {S: merchant}},
            "Limit": 6,
        }


def all_pages(client: Any, **arguments: Any) -> list[dict[str, Any]]:
    """Every page of a query, following LastEvaluatedKey, without the per-request metadata."""
    pages = []
    while True:
        page = client.query(**arguments)
        page.pop("ResponseMetadata")
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        arguments = {**arguments, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def load(server: MotoServer) -> Any:
    server.reset()
    client = server.client("dynamodb")
    client.create_table(TableName="history", **HISTORY_SHAPE)
    client.create_table(TableName="numbers", **NUMBERS_SHAPE)
    for item in history_items():
        client.put_item(TableName="history", Item=item)
    for n in ("1", "2.5", "10", "-3"):
        client.put_item(TableName="numbers", Item={"n": {"N": n}, "v": {S: n}})
    return client


def test_patched_queries_answer_exactly_as_stock_moto(stock_server: MotoServer, patched_server: MotoServer) -> None:
    stock, patched = load(stock_server), load(patched_server)
    compared = 0
    for arguments in queries():
        expected = all_pages(stock, TableName="history", **arguments)
        assert all_pages(patched, TableName="history", **arguments) == expected, arguments
        compared += len(expected)
    for value in ("1", "1.0", "2.5", "-3", "7"):  # "1.0" is the item stored as "1"
        arguments = {
            "TableName": "numbers",
            "KeyConditionExpression": "n = :n",
            "ExpressionAttributeValues": {":n": {"N": value}},
        }
        assert all_pages(patched, **arguments) == all_pages(stock, **arguments), arguments
    assert compared > 250  # the comparison covered many pages, including paginated ones


def test_the_comparison_covers_pagination_and_the_page_size_limit(stock_server: MotoServer) -> None:
    """The data really exercises what the comparison claims to cover (on stock moto itself)."""
    client = load(stock_server)
    key = {"KeyConditionExpression": "card_id = :c", "ExpressionAttributeValues": {":c": {S: "card_big"}}}
    pages = all_pages(client, TableName="history", IndexName="by_time", **key)
    assert len(pages) > 1 and "LastEvaluatedKey" in pages[0]  # 1 MB reached with no Limit
    indexed = [(item["card_id"][S], item["last_key"][S]) for item in history_items() if "last_key" in item]
    assert len(indexed) > len(set(indexed))  # a card's index sort key repeats: ties go by the table key
    assert len(indexed) < len(history_items())  # some items are not in the index
