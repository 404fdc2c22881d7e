"""DynamoDB Query reads one partition, as on AWS, instead of the whole table.

Stock moto 5.2.5's `Table.query` (`dynamodb/models/table.py`) starts every Query from
`all_items()`: every item of the table, sorted, then filtered by the key condition. A query on a
local secondary index (or on a global one) compares every item's attributes in Python. So each
query costs time in proportion to the whole table: on the card-history table's shape, measured
in process (docs/pipeline.md, "Per-card history at scale"), 17 ms per query at 2,500 items,
156 ms at 25,000, 1.6 s at 250,000, which made FeatureEngineering's one query per card time out
locally long before the table held a realistic history. On AWS a query reads only the items of
its partition key.

Here, when the key condition fixes the table's partition key (every table query; an index query
whose partition key is the table's, as on a local secondary index), stock moto's own `query`
runs unchanged on a view of the table whose `all_items()` is that one partition (moto keeps
items as `items[hash][range]`, so the partition is a dict lookup). Everything else (index
checks, sort order, ExclusiveStartKey, Limit, the 1 MB page, LastEvaluatedKey, projections,
filters) is still moto's code on moto's table. An item outside the partition never passes the
key condition, and the order after moto's sort is total (it ends in the table's primary key), so
the results are exactly stock moto's (tests/integration/test_local_aws_dynamodb_queries.py
compares the two servers page by page; tests/unit/test_local_aws_dynamodb_queries.py shows the
other partitions are not read). Other queries (a global index on another attribute) keep the
full scan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.dynamodb.models.table import Table

_applied = False


def partition_value(table: Any, hash_key: Any, index_name: str | None, hash_key_conditions: Any) -> Any:
    """The table partition key value the query is limited to, or None when it is not limited to one."""
    if index_name is None:
        return hash_key
    for attribute, value in hash_key_conditions or ():
        if attribute == table.hash_key_attr:
            return value
    return None


def partition_items(table: Any, value: Any) -> list[Any]:
    """What `Table.all_items()` returns, restricted to the items whose partition key is `value`."""
    stored = table.items.get(value)  # .get: `items` is a defaultdict, a lookup must not add a key
    if stored is None:
        return []
    if not table.range_key_attr:
        return [stored]
    return sorted(stored.values(), key=lambda item: item.range_key)


class PartitionView:
    """The table as seen by one query: its own attributes and methods, one partition's items."""

    def __init__(self, table: Any, value: Any) -> None:
        self._table = table
        self._value = value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def all_items(self) -> list[Any]:
        return partition_items(self._table, self._value)


def partition_query(stock_query: Callable[..., Any]) -> Callable[..., Any]:
    """`Table.query` that runs `stock_query` on the query's partition only, when it has one."""

    def query(
        self: Any,
        hash_key: Any,
        range_comparison: Any,
        range_objs: Any,
        limit: Any,
        exclusive_start_key: Any,
        scan_index_forward: Any,
        projection_expressions: Any,
        index_name: str | None = None,
        consistent_read: bool = False,
        filter_expression: Any = None,
        hash_key_conditions: Any = None,
        range_key_conditions: Any = None,
        **filter_kwargs: Any,
    ) -> Any:
        value = partition_value(self, hash_key, index_name, hash_key_conditions)
        return stock_query(
            self if value is None else PartitionView(self, value),
            hash_key,
            range_comparison,
            range_objs,
            limit,
            exclusive_start_key,
            scan_index_forward,
            projection_expressions,
            index_name,
            consistent_read,
            filter_expression,
            hash_key_conditions,
            range_key_conditions,
            **filter_kwargs,
        )

    return query


def apply() -> None:
    global _applied
    if _applied:
        return
    Table.query = partition_query(Table.query)  # type: ignore[method-assign]
    _applied = True
