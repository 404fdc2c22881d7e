"""Card history that belongs to an upload revision (issue 21, item 1): what a superseded, rejected
or corrected upload of a batch recorded stops counting once a newer revision takes over, so every
score equals a clean stage's, one that only ever saw the final uploads.

The handlers run in-process against a moto server over HTTP (as test_reuploads.py and
test_fanout.py do), on a versioned data bucket with the events EventBridge sends. Each case runs
twice: the history of everything uploaded, then a fresh table and bucket with only the final
uploads; scores are compared transaction by transaction.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pytest
from data_validation import handler as validation
from feature_engineering import batch_history, card_history, features
from feature_engineering import handler as feature_engineering
from merge import handler as merge
from predictions import handler as predictions
from svc_helpers import batch_csv, create_card_history_table

BATCH = "2024-04/history"
LATER = "2024-04/later"
# What the template's ItemSelector passes each chunk from Validate's result (besides status, chunk).
RUN_FIELDS = ("bucket", "batch_id", "source_key", "source_revision", "upload")


def new_stage(s3: Any, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A versioned data bucket and an empty card-history table: a stage that saw nothing yet."""
    bucket = f"test-history-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    monkeypatch.setenv("CARD_HISTORY_TABLE", create_card_history_table(endpoint))
    return bucket


def upload(s3: Any, bucket: str, batch: str, body: str) -> dict[str, Any]:
    key = f"incoming/{batch}.csv"
    version = s3.put_object(Bucket=bucket, Key=key, Body=body.encode())["VersionId"]
    return {"detail": {"bucket": {"name": bucket}, "object": {"key": key, "version-id": version}}}


def chunk_event(validated: dict[str, Any], chunk: str) -> dict[str, Any]:
    """What the state machine's Map hands each iteration (the template's ItemSelector)."""
    return {**{k: validated[k] for k in RUN_FIELDS}, "status": "passed", "chunk": chunk}


def score_chunk(validated: dict[str, Any], chunk: str) -> None:
    built = feature_engineering.lambda_handler(chunk_event(validated, chunk), None)
    assert built["status"] == "ok", built
    scored = predictions.lambda_handler(built, None)
    assert scored["status"] == "ok", scored


def run_pipeline(event: dict[str, Any]) -> dict[str, Any]:
    validated = validation.lambda_handler(event, None)
    assert validated["status"] == "passed", validated
    for chunk in validated["chunks"]:
        score_chunk(validated, chunk)
    merged = merge.lambda_handler(validated, None)
    assert merged["status"] == "ok", merged
    return merged


def scores(s3: Any, bucket: str, batch: str) -> pd.Series:
    body = s3.get_object(Bucket=bucket, Key=f"predictions/{batch}/predictions.csv")["Body"].read()
    frame = pd.read_csv(io.BytesIO(body), dtype={"transaction_id": str, "card_id": str})
    return frame.set_index("transaction_id")["fraud_score"].sort_index()


def assert_same_scores(dirty: pd.Series, clean: pd.Series) -> None:
    assert len(clean) > 100 and clean.nunique() > 10  # the scores vary: equality means something
    differing = int((dirty.reindex(clean.index) != clean).sum())
    assert dirty.index.equals(clean.index) and differing == 0, f"{differing} of {len(clean)} scores differ"


def without(body: str, every: int) -> str:
    """The upload with every `every`-th row dropped and one card's rows gone altogether."""
    header, *rows = body.splitlines()
    gone = rows[0].split(",")[1]
    kept = [r for n, r in enumerate(rows) if n % every and r.split(",")[1] != gone]
    return "\n".join([header, *kept]) + "\n"


ORIGINAL = batch_csv(first_day="2024-04-08", days=6, drop_label=True)
FOLLOWING = batch_csv(first_day="2024-04-14", days=3, drop_label=True)


def test_a_corrected_reupload_that_drops_rows_scores_as_if_only_the_correction_came(
    s3: Any, uploaded_model: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrected = without(ORIGINAL, 10)
    bucket = new_stage(s3, moto_endpoint, monkeypatch)
    run_pipeline(upload(s3, bucket, BATCH, ORIGINAL))
    run_pipeline(upload(s3, bucket, BATCH, corrected))
    run_pipeline(upload(s3, bucket, LATER, FOLLOWING))
    dirty = scores(s3, bucket, BATCH), scores(s3, bucket, LATER)

    clean_bucket = new_stage(s3, moto_endpoint, monkeypatch)
    run_pipeline(upload(s3, clean_bucket, BATCH, corrected))
    run_pipeline(upload(s3, clean_bucket, LATER, FOLLOWING))

    assert len(dirty[0]) == corrected.count("\n") - 1 < ORIGINAL.count("\n") - 1
    assert_same_scores(dirty[0], scores(s3, clean_bucket, BATCH))
    assert_same_scores(dirty[1], scores(s3, clean_bucket, LATER))


def test_a_large_upload_superseded_mid_fan_out_by_a_small_correction_leaves_no_trace(
    s3: Any, uploaded_model: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The large upload's first chunk records its cards; then the correction lands and takes over;
    the large upload's other chunks still write (they had passed their last check), side by side
    with the correction's chunks; then an unrelated later batch of the same cards is scored."""
    large = batch_csv(first_day="2024-04-01", days=13, drop_label=True)
    correction = batch_csv(first_day="2024-04-11", days=3, drop_label=True)
    monkeypatch.setenv("CHUNK_TARGET_BYTES", str(len(large) // 3 + 1))
    bucket = new_stage(s3, moto_endpoint, monkeypatch)
    stale = validation.lambda_handler(upload(s3, bucket, BATCH, large), None)
    assert len(stale["chunks"]) == 3
    score_chunk(stale, stale["chunks"][0])

    newer = validation.lambda_handler(upload(s3, bucket, BATCH, correction), None)
    assert newer["status"] == "passed" and len(newer["chunks"]) == 1

    def late_write(chunk: str) -> None:  # what FeatureEngineering records once past its last check
        body = s3.get_object(Bucket=bucket, Key=chunk)["Body"].read()
        frame = features.parse_validated(pd.read_csv(io.BytesIO(body), dtype=str))
        card_history.record(frame, BATCH, stale["source_revision"])

    with ThreadPoolExecutor(3) as pool:
        running = [pool.submit(late_write, chunk) for chunk in stale["chunks"][1:]]
        running.append(pool.submit(score_chunk, newer, newer["chunks"][0]))
        for future in running:
            future.result()
    assert merge.lambda_handler(newer, None)["status"] == "ok"
    assert merge.lambda_handler(stale, None)["status"] == "superseded"
    run_pipeline(upload(s3, bucket, LATER, FOLLOWING))
    dirty = scores(s3, bucket, BATCH), scores(s3, bucket, LATER)

    monkeypatch.delenv("CHUNK_TARGET_BYTES")
    clean_bucket = new_stage(s3, moto_endpoint, monkeypatch)
    run_pipeline(upload(s3, clean_bucket, BATCH, correction))
    run_pipeline(upload(s3, clean_bucket, LATER, FOLLOWING))

    assert_same_scores(dirty[0], scores(s3, clean_bucket, BATCH))
    assert_same_scores(dirty[1], scores(s3, clean_bucket, LATER))


@pytest.mark.parametrize("rejection", ["unreadable", "too_many_bad_rows"])
def test_a_rejected_reupload_withdraws_the_batch_from_later_history(
    s3: Any, uploaded_model: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, rejection: str
) -> None:
    header, *rows = ORIGINAL.splitlines()
    if rejection == "unreadable":
        body, status = "just,some\ntext\n", "error"
    else:
        body = "\n".join([header, *(r.replace(",in_store,", ",fax,").replace(",online,", ",fax,") for r in rows)])
        status = "failed"
    bucket = new_stage(s3, moto_endpoint, monkeypatch)
    run_pipeline(upload(s3, bucket, BATCH, ORIGINAL))
    assert validation.lambda_handler(upload(s3, bucket, BATCH, body + "\n"), None)["status"] == status
    run_pipeline(upload(s3, bucket, LATER, FOLLOWING))
    dirty = scores(s3, bucket, LATER)

    clean_bucket = new_stage(s3, moto_endpoint, monkeypatch)
    run_pipeline(upload(s3, clean_bucket, LATER, FOLLOWING))

    assert_same_scores(dirty, scores(s3, clean_bucket, LATER))


def registry(table: str, batch: str) -> dict[str, Any]:
    import boto3

    item = boto3.client("dynamodb").get_item(TableName=table, Key=batch_history.registry_key(batch))["Item"]
    return {name: value["S"] for name, value in item.items()}


def test_the_registry_never_goes_back_to_an_older_upload(s3: Any, card_history_table: str) -> None:
    """A late validation run of an older upload is superseded and leaves the newer one registered."""
    bucket = f"test-history-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    older = upload(s3, bucket, BATCH, ORIGINAL)
    newer = upload(s3, bucket, BATCH, FOLLOWING)
    assert validation.lambda_handler(newer, None)["status"] == "passed"

    assert validation.lambda_handler(older, None)["status"] == "superseded"
    assert registry(card_history_table, BATCH)["revision"] == newer["detail"]["object"]["version-id"]


def test_an_older_revision_cannot_replace_a_newer_registration(card_history_table: str) -> None:
    """The conditional write: a run that read the registry, then found its upload (r1) the latest
    in S3 just before a newer upload (r2) registered, fails the condition, reads again and is
    superseded; without the condition r1 would overwrite r2."""

    answers = ["r1", "r2"]  # what S3 names the latest: r1 first, then (r2 uploaded) r2

    def racing_latest() -> str:
        answer = answers.pop(0)
        if answer == "r1":  # r2 lands and its run registers between r1's registry read and write
            batch_history.take_over("b", "r2", "incoming/b.csv", lambda: "r2")
        return answer

    with pytest.raises(batch_history.Superseded):
        batch_history.take_over("b", "r1", "incoming/b.csv", racing_latest)
    assert not answers and registry(card_history_table, "b")["revision"] == "r2"


def test_items_of_two_revisions_never_overwrite_each_other(card_history_table: str) -> None:
    frame = features.parse_validated(pd.read_csv(io.StringIO(ORIGINAL), dtype=str))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda rev: card_history.record(frame, BATCH, rev), ["r1", "r2"]))
    later = frame.assign(transaction_id=frame["transaction_id"] + "-later")
    later["timestamp"] += pd.Timedelta(days=30)

    batch_history.take_over(BATCH, "r2", "incoming/x.csv", lambda: "r2")
    counted = card_history.load(later, LATER)
    assert sorted(counted["transaction_id"]) == sorted(frame["transaction_id"])  # r2's, once each
    assert card_history.load(later, BATCH).empty  # a batch's own items never count as its history
    batch_history.take_over(BATCH, "r3", "incoming/x.csv", lambda: "r3")  # r3 rejected: it recorded nothing
    assert card_history.load(later, LATER).empty
    items = json.loads(json.dumps(card_history.history_items(frame.iloc[:1], BATCH, "r9")))
    assert items[0]["batch_part"]["S"] == f"{BATCH}#r9#0000" and items[0]["revision"]["S"] == "r9"


def test_an_upload_deleted_before_its_rerun_withdraws_the_batch_from_history(
    s3: Any, uploaded_model: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run for an upload that no longer exists removes the batch's outputs; its history goes too."""
    bucket = new_stage(s3, moto_endpoint, monkeypatch)
    run_pipeline(upload(s3, bucket, BATCH, ORIGINAL))
    frame = features.parse_validated(pd.read_csv(io.StringIO(FOLLOWING), dtype=str))
    assert not card_history.load(frame, LATER).empty
    s3.delete_object(Bucket=bucket, Key=f"incoming/{BATCH}.csv")  # a delete marker: the key is gone

    result = validation.lambda_handler({"bucket": bucket, "key": f"incoming/{BATCH}.csv"}, None)

    assert result["status"] == "error" and "does not exist" in result["error"]["message"]
    assert registry(os.environ["CARD_HISTORY_TABLE"], BATCH)["revision"] == batch_history.NO_REVISION
    assert card_history.load(frame, LATER).empty
