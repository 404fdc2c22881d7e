"""Helpers shared by the handler tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "transactions.csv"


def sample_lines() -> list[str]:
    return SAMPLE.read_text().splitlines()


def batch_csv(first_day: str = "2024-04-20", days: int = 3, drop_label: bool = False) -> str:
    """Consecutive days of the sample: the shape of a real upload (history for each card)."""
    header, *rows = sample_lines()
    last = f"2024-04-{int(first_day[-2:]) + days:02d}"
    chosen = [r for r in rows if first_day <= r.split(",")[2][:10] < last]
    if drop_label:
        header = header.rsplit(",", 1)[0]
        chosen = [r.rsplit(",", 1)[0] for r in chosen]
    return "\n".join([header, *chosen]) + "\n"


def put(s3: Any, bucket: str, key: str, body: str | bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)


def keys(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def log_records(captured: str) -> list[dict[str, Any]]:
    """The JSON lines a handler printed; every stdout line must be JSON (Powertools style)."""
    return [json.loads(line) for line in captured.splitlines() if line.strip()]


def errors_logged(captured: str) -> list[dict[str, Any]]:
    return [r for r in log_records(captured) if r.get("level") == "ERROR"]


def create_card_history_table(endpoint: str) -> str:
    """An empty table shaped as infra/template.yaml's CardHistoryTable."""
    import boto3

    name = f"test-card-history-{uuid.uuid4().hex[:12]}"
    boto3.client("dynamodb", endpoint_url=endpoint).create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "card_id", "AttributeType": "S"},
            {"AttributeName": "batch_part", "AttributeType": "S"},
            {"AttributeName": "last_key", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "card_id", "KeyType": "HASH"},
            {"AttributeName": "batch_part", "KeyType": "RANGE"},
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_time",
                "KeySchema": [
                    {"AttributeName": "card_id", "KeyType": "HASH"},
                    {"AttributeName": "last_key", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return name
