"""`inv run-pipeline`'s own rules: which file names are refused, and what it prints from the
execution history and Lambda's REPORT lines (deploy/pipeline_run.py, local/pipeline_progress.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lambda_ml_layers.core.errors import StateMachineError
from lambda_ml_layers.deploy.pipeline_run import batch_of, report_key, upload_key
from lambda_ml_layers.local.pipeline_progress import Execution, event_line, failure_line, report_figures


@pytest.mark.parametrize(
    ("name", "shown"),
    [("bad\nname.csv", r"'\n'"), ("two words.csv", "' '"), ("caf\u00e9.csv", "'\u00e9'"), ("tab\t.csv", r"'\t'")],
)
def test_an_odd_file_name_is_refused_naming_the_characters_and_a_fix(name: str, shown: str) -> None:
    with pytest.raises(StateMachineError, match="characters the pipeline does not take") as raised:
        upload_key(Path("/data") / name)
    message = str(raised.value)
    assert shown in message and "Fix: rename or copy the file, e.g. to '" in message
    assert raised.value.exit_code == 29


def test_a_plain_name_is_uploaded_under_incoming() -> None:
    assert upload_key(Path("/data/2024-05-01_batch.csv")) == "incoming/2024-05-01_batch.csv"


def test_report_lines_give_calls_longest_total_and_peak_memory() -> None:
    lines = [
        "START RequestId: a Version: 1",
        "REPORT RequestId: a\tDuration: 1200.50 ms\tBilled Duration: 1201 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 300 MB\tInit Duration: 900.00 ms\t",
        "REPORT RequestId: b\tDuration: 300.00 ms\tBilled Duration: 300 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 310 MB\t",
    ]
    assert report_figures(lines) == (2, 1200.5, 1500.5, 310)
    assert report_figures(["nothing"]) == (0, 0.0, 0.0, 0)


def test_progress_lines_name_the_state_and_its_error() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    entered = {
        "type": "TaskStateEntered",
        "timestamp": start + dt.timedelta(seconds=1.5),
        "stateEnteredEventDetails": {"name": "Validate"},
    }
    failed = {
        "type": "TaskFailed",
        "timestamp": start + dt.timedelta(seconds=4),
        "taskFailedEventDetails": {"error": "Sandbox.Timedout"},
    }
    scheduled = {"type": "TaskScheduled", "timestamp": start, "taskScheduledEventDetails": {}}
    assert event_line(entered, start.timestamp()) == "    1.50 s  TaskStateEntered Validate"
    assert event_line(failed, start.timestamp()) == "    4.00 s  TaskFailed Sandbox.Timedout"
    assert event_line(scheduled, start.timestamp()) is None


def test_a_timeout_is_reported_as_a_timeout_with_the_fix() -> None:
    cause = '{"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 3.00 seconds"}'
    timed_out = Execution("arn", "FAILED", None, "Sandbox.Timedout", cause, 3.2, [])
    assert failure_line(timed_out) == (
        "FAILED in 3.2 s: a function timed out (Task timed out after 3.00 seconds). "
        "Fix: raise its Timeout in infra/template.yaml, or give it less to do."
    )
    other = Execution("arn", "FAILED", None, "ValueError", "boom", 1.0, [])
    assert failure_line(other) == "FAILED in 1.0 s: ValueError: boom"


def test_the_report_of_a_checked_or_a_refused_batch_is_found() -> None:
    checked = {"status": "failed", "batch_id": "2024/b", "report_key": "reports/2024/b/validation.json"}
    refused = {
        "status": "error",
        "error": {"type": "BadInput", "message": "empty file (report: s3://bkt/reports/empty/validation.json)"},
    }
    assert report_key(checked) == "reports/2024/b/validation.json"
    assert report_key(refused) == "reports/empty/validation.json"
    assert report_key({"status": "error", "error": {"message": "no report"}}) is None
    assert report_key(None) is None
    assert batch_of("reports/2024/b/validation.json") == "2024/b"
