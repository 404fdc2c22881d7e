"""Uploads out of time order per card are detected (issue 21, item 2): a batch holding transactions
older than a card's newest stored one says so in its summary (rows, cards, the later batches), and
what it says to do (upload those later batches again) gives the scores of in-order uploads.

Handlers in-process against a moto server over HTTP, as in test_history_revisions.py."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
from svc_helpers import batch_csv, read_json
from test_history_revisions import assert_same_scores, new_stage, run_pipeline, scores, upload

NEWER = batch_csv(first_day="2024-04-10", days=3, drop_label=True)
OLDER = batch_csv(first_day="2024-04-07", days=4, drop_label=True)  # overlaps NEWER's first day


def expected_late(older: str, newer: str) -> tuple[int, int]:
    """Rows of `older` before their card's newest transaction in `newer`, and their cards."""
    old, new = (pd.read_csv(io.StringIO(body), dtype=str) for body in (older, newer))
    newest = new.groupby("card_id")["timestamp"].max()
    late = old["timestamp"] < old["card_id"].map(newest).fillna("")
    return int(late.sum()), old.loc[late, "card_id"].nunique()


@pytest.mark.parametrize("chunks", [1, 3])
def test_a_batch_older_than_stored_transactions_is_named_in_its_summary(
    s3: Any, uploaded_model: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, chunks: int
) -> None:
    bucket = new_stage(s3, moto_endpoint, monkeypatch)
    in_order = run_pipeline(upload(s3, bucket, "newer", NEWER))
    assert in_order["out_of_order"]["rows"] == 0 and "note" not in in_order["out_of_order"]
    if chunks > 1:
        monkeypatch.setenv("CHUNK_TARGET_BYTES", str(len(OLDER) // chunks + 1))

    result = run_pipeline(upload(s3, bucket, "older", OLDER))

    rows, cards = expected_late(OLDER, NEWER)
    assert 0 < rows < OLDER.count("\n") - 1 and cards > 1
    summary = read_json(s3, bucket, "predictions/older/summary.json")
    assert result["chunks"] == chunks and result["out_of_order"] == summary["out_of_order"]
    section = summary["out_of_order"]
    assert (section["rows"], section["cards"], section["later_batches"]) == (rows, cards, ["newer"])
    assert f"{rows} row(s) of {cards} card(s)" in section["note"] and "upload those batches again" in section["note"]


def test_uploading_the_later_batch_again_scores_it_as_in_time_order(
    s3: Any, uploaded_model: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary's advice: after the older batch, upload the named later batch again."""
    bucket = new_stage(s3, moto_endpoint, monkeypatch)
    run_pipeline(upload(s3, bucket, "newer", NEWER))
    run_pipeline(upload(s3, bucket, "older", OLDER))
    before = scores(s3, bucket, "newer")
    run_pipeline(upload(s3, bucket, "newer", NEWER))

    clean = new_stage(s3, moto_endpoint, monkeypatch)
    run_pipeline(upload(s3, clean, "older", OLDER))
    run_pipeline(upload(s3, clean, "newer", NEWER))

    assert (before != scores(s3, clean, "newer")).sum() > 0  # out of order, the scores differed
    assert_same_scores(scores(s3, bucket, "newer"), scores(s3, clean, "newer"))
