"""Which upload revision of each batch the card history counts.

CardHistoryTable holds, per card and batch, the transactions each run recorded, tagged with the
upload revision the run read (card_history.py). A batch can be uploaded again (a correction, a
re-upload that is rejected) while an earlier run still writes; which revision counts is decided
here, in one registry item per batch in the same table:

    card_id = "#batch#<batch_id>", batch_part = "current", revision = <the revision that counts>

DataValidation makes a revision the batch's current one when it publishes its result (passed,
failed or rejected: take_over), which is the moment the older revision's outputs are withdrawn
too. FeatureEngineering counts a stored item only if its revision is its batch's current one
(current_revisions), so whatever a superseded, failed or corrected upload stored stops counting
at that moment, even items a superseded chunk writes afterwards: nothing has to be deleted in
time, and chunks of two revisions can write side by side (their items have different keys).

The registry never goes back to an older revision: a revision is written only while S3 names it
the upload's latest, with a condition that the registry still holds what was read before asking
S3 (a later upload's run registered in between fails the condition and the loop reads again).
The registry item has no `last_key`, so it is not in the `by_time` index that history is read
from, and its sort key never ends in "#<4 digits>" as a history item's does: no card id can
collide with it. Linked into the data_validation and feature_engineering packages.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from .runtime import ArtifactError, Superseded

REGISTRY_PREFIX = "#batch#"
REGISTRY_SORT_KEY = "current"
# Registered for an upload that no longer exists: no revision of its batch counts (a revision is
# an S3 version id or ETag, never this text).
NO_REVISION = "(no upload)"
GET_BATCH = 100  # BatchGetItem's maximum keys per request
MAX_ATTEMPTS = 8
# One connection per query thread of card_history (botocore keeps 10 and discards the rest).
POOL_CONNECTIONS = 16


def table_name() -> str:
    name = os.environ.get("CARD_HISTORY_TABLE")
    if not name:
        raise ArtifactError("CARD_HISTORY_TABLE is not set in the function's environment (see infra/template.yaml)")
    return name


@functools.cache
def client() -> Any:
    """One low-level client per container: clients are thread-safe (resources are not)."""
    import boto3
    from botocore.config import Config

    return boto3.client("dynamodb", config=Config(max_pool_connections=POOL_CONNECTIONS))


def registry_key(batch_id: str) -> dict[str, dict[str, str]]:
    return {"card_id": {"S": REGISTRY_PREFIX + batch_id}, "batch_part": {"S": REGISTRY_SORT_KEY}}


def current_revisions(batch_ids: Iterable[str]) -> dict[str, str | None]:
    """Each batch's current revision (None: no revision was ever registered, so all its items
    count, as items recorded before the registry existed do). Strongly consistent reads: a
    take-over that returned is seen."""
    wanted = sorted(set(batch_ids))
    found: dict[str, str | None] = dict.fromkeys(wanted)
    name = table_name()
    for start in range(0, len(wanted), GET_BATCH):
        request: dict[str, Any] = {
            name: {"Keys": [registry_key(b) for b in wanted[start : start + GET_BATCH]], "ConsistentRead": True}
        }
        for attempt in range(MAX_ATTEMPTS):
            answer = client().batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(name, []):
                found[item["card_id"]["S"].removeprefix(REGISTRY_PREFIX)] = item["revision"]["S"]
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(2.0, 0.05 * 2**attempt))  # throttled: DynamoDB returns what it could not read
        else:
            raise ArtifactError(
                f"DynamoDB table {name} left batch revisions unread after {MAX_ATTEMPTS} attempts (throttled): "
                "rerun the batch from FeatureEngineering"
            )
    return found


class RevisionCache:
    """current_revisions for the batches one invocation meets, asked once each (history reads run
    on several threads; the lock keeps them from asking for the same batch twice)."""

    def __init__(self) -> None:
        self._known: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def counts(self, batch_id: str, revision: str | None) -> bool:
        """Whether an item of `batch_id` recorded by `revision` (None: recorded before revisions
        were kept) counts; the batch must have been resolved."""
        current = self._known[batch_id]
        return current is None or current == revision

    def resolve(self, batch_ids: Iterable[str]) -> None:
        with self._lock:
            missing = set(batch_ids) - self._known.keys()
            if missing:
                self._known.update(current_revisions(missing))


def take_over(batch_id: str, revision: str, source_key: str, latest: Callable[[], str]) -> None:
    """Make `revision` the batch's current revision, as long as `latest()` (the upload's current
    revision in S3) names it. Raises Superseded if a newer upload is the latest."""
    name = table_name()
    for _ in range(MAX_ATTEMPTS):
        seen = current_revisions([batch_id])[batch_id]
        now = latest()
        if now != revision:
            raise Superseded(
                f"the upload of batch {batch_id} is now revision {now} (this run read {revision}): "
                "the newer upload's run decides what the batch's card history holds"
            )
        if seen == revision:
            return
        condition = (
            {"ConditionExpression": "attribute_not_exists(card_id)"}
            if seen is None
            else {
                "ConditionExpression": "revision = :seen",
                "ExpressionAttributeValues": {":seen": {"S": seen}},
            }
        )
        item = {
            **registry_key(batch_id),
            "revision": {"S": revision},
            "source_key": {"S": source_key},
            "taken_over_at": {"S": datetime.now(UTC).isoformat(timespec="milliseconds")},
        }
        try:
            client().put_item(TableName=name, Item=item, **condition)
            return
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # Another run of the batch registered in between: read it and ask S3 again.
    raise ArtifactError(
        f"batch {batch_id}'s revision in DynamoDB table {name} kept changing under {MAX_ATTEMPTS} attempts "
        "(uploads of the batch in quick succession): upload the batch again"
    )
