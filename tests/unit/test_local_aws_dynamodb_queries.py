"""local_aws_fixes.dynamodb_queries: a Query with a partition key reads that partition only.

In process, on moto's own Table objects (the patch is built with `partition_query`, not
installed, so moto stays stock for everything else in this process). The other partitions are
made unreadable: stock moto's query reads them (the gap: its time grows with the table), the
patched one does not. That the answers are the same as stock moto's is compared over HTTP in
tests/integration/test_local_aws_dynamodb_queries.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from lambda_ml_layers.local_aws_fixes.dynamodb_queries import partition_items, partition_query, partition_value

patched_query = partition_query(Table.query)


class WholeTableRead(Exception):
    pass


def history_table() -> Table:
    table = Table(
        "history",
        account_id="123456789012",
        region="us-east-1",
        schema=[{"AttributeName": "card_id", "KeyType": "HASH"}, {"AttributeName": "batch_part", "KeyType": "RANGE"}],
        attr=[{"AttributeName": n, "AttributeType": "S"} for n in ("card_id", "batch_part", "last_key", "merchant")],
        indexes=[
            {
                "IndexName": "by_time",
                "KeySchema": [
                    {"AttributeName": "card_id", "KeyType": "HASH"},
                    {"AttributeName": "last_key", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        global_indexes=[
            {
                "IndexName": "by_merchant",
                "KeySchema": [{"AttributeName": "merchant", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    for card in ("c1", "c2", "c3"):
        for batch in range(3):
            table.put_item(
                {
                    "card_id": {"S": card},
                    "batch_part": {"S": f"b{batch}"},
                    "last_key": {"S": f"2024-06-0{3 - batch}"},
                    "merchant": {"S": "m1"},
                }
            )
    return table


def unreadable_elsewhere(table: Table) -> None:
    """Reading the whole table (moto's all_items) now fails."""

    def whole_table() -> list[Any]:
        raise WholeTableRead

    table.all_items = whole_table  # type: ignore[method-assign]


def by_time(query: Any, table: Table, card: str) -> list[str]:
    condition = [("card_id", DynamoType({"S": card}))]
    items, _, _ = query(
        table, condition[0][1], None, [], None, None, False, None, index_name="by_time", hash_key_conditions=condition
    )
    return [item.attrs["batch_part"].value for item in items]


def test_an_index_query_reads_only_its_partition() -> None:
    table = history_table()
    expected = by_time(Table.query, table, "c2")
    unreadable_elsewhere(table)

    assert by_time(patched_query, table, "c2") == expected == ["b0", "b1", "b2"]  # newest last_key first
    assert by_time(patched_query, table, "c9") == []
    with pytest.raises(WholeTableRead):  # the gap: stock moto reads every partition
        by_time(Table.query, table, "c2")


def test_a_table_query_reads_only_its_partition() -> None:
    table = history_table()
    unreadable_elsewhere(table)
    items, _, last = patched_query(table, DynamoType({"S": "c3"}), None, [], 2, None, True, None)
    assert [item.attrs["batch_part"].value for item in items] == ["b0", "b1"]
    assert last == {"card_id": DynamoType({"S": "c3"}), "batch_part": DynamoType({"S": "b1"})}


def test_a_global_index_on_another_attribute_still_reads_the_table() -> None:
    table = history_table()
    condition = [("merchant", DynamoType({"S": "m1"}))]
    assert partition_value(table, condition[0][1], "by_merchant", condition) is None
    unreadable_elsewhere(table)
    with pytest.raises(WholeTableRead):
        patched_query(table, condition[0][1], None, [], None, None, True, None, "by_merchant", False, None, condition)


def test_partition_items_do_not_add_a_partition() -> None:
    table = history_table()
    assert partition_items(table, DynamoType({"S": "nope"})) == []
    assert DynamoType({"S": "nope"}) not in table.items  # items is a defaultdict: a lookup must not add
