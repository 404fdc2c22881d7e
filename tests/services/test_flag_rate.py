"""The per-batch flag-rate metric (issue 21, item 4): Merge emits the share of a batch's scored rows
the model flagged as one EMF point (namespace LambdaMLPipeline, metric FlagRate, the dimensions
infra/template.yaml's FlagRateHighAlarm and FlagRateLowAlarm watch), once per batch however many
chunks it had, and none for a batch too small for its rate to mean anything.

Handlers in-process against a moto server over HTTP (test_history_revisions.run_pipeline)."""

from __future__ import annotations

from typing import Any

import pytest
from merge.batch_summary import FLAG_RATE_METRIC, FLAG_RATE_MIN_ROWS, flag_rate_percent
from svc_helpers import batch_csv, log_records, read_json
from test_history_revisions import new_stage, run_pipeline, upload

LARGE = batch_csv(first_day="2024-04-01", days=24, drop_label=True)  # about 1,270 rows
SMALL = batch_csv(first_day="2024-04-10", days=3, drop_label=True)
# What the alarms in infra/template.yaml select (tests/services/template checks their side).
ALARM_DIMENSIONS = {"function_name": "Merge", "service": "merge"}


def flag_rate_points(stdout: str) -> list[dict[str, Any]]:
    """The EMF lines among what the handlers printed that carry a FlagRate value."""
    return [r for r in log_records(stdout) if "_aws" in r and FLAG_RATE_METRIC in r]


def test_the_rate_is_a_percent_of_scored_rows_and_absent_for_small_batches() -> None:
    assert flag_rate_percent(40, 1000) == 4.0
    assert flag_rate_percent(1, 3000) == pytest.approx(0.0333, abs=1e-4)
    assert flag_rate_percent(0, FLAG_RATE_MIN_ROWS) == 0.0  # a large batch with no flag is a point (the low alarm's)
    assert flag_rate_percent(5, FLAG_RATE_MIN_ROWS - 1) is None


@pytest.mark.parametrize("chunks", [1, 3])
def test_merge_emits_the_batchs_flag_rate_once(
    s3: Any,
    uploaded_model: dict[str, Any],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    chunks: int,
) -> None:
    rows = LARGE.count("\n") - 1
    assert rows >= FLAG_RATE_MIN_ROWS
    if chunks > 1:
        monkeypatch.setenv("CHUNK_TARGET_BYTES", str(len(LARGE) // chunks + 1))
    bucket = new_stage(s3, moto_endpoint, monkeypatch)
    capsys.readouterr()

    output = run_pipeline(upload(s3, bucket, "rated", LARGE))

    summary = read_json(s3, bucket, "predictions/rated/summary.json")
    assert output["chunks"] == chunks and summary["rows"] == rows and summary["flagged"] > 0
    [point] = flag_rate_points(capsys.readouterr().out)
    [declared] = point["_aws"]["CloudWatchMetrics"]
    assert declared["Namespace"] == "LambdaMLPipeline"
    assert declared["Metrics"] == [{"Name": "FlagRate", "Unit": "Percent"}]
    assert declared["Dimensions"] == [sorted(ALARM_DIMENSIONS)]
    assert {k: point[k] for k in ALARM_DIMENSIONS} == ALARM_DIMENSIONS
    assert point["FlagRate"] == round(100 * summary["flagged"] / rows, 4)


def test_a_small_batch_emits_no_flag_rate(
    s3: Any,
    uploaded_model: dict[str, Any],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = new_stage(s3, moto_endpoint, monkeypatch)
    capsys.readouterr()
    output = run_pipeline(upload(s3, bucket, "small", SMALL))
    assert 0 < output["rows"] < FLAG_RATE_MIN_ROWS
    assert flag_rate_points(capsys.readouterr().out) == []
