"""runtime.py's Logger and metrics, written by Powertools: the lines the dashboard and the
tests read keep their fields, and Powertools' own switches work."""

from __future__ import annotations

import pytest
from data_validation import handler, runtime
from svc_helpers import log_records


def test_keys_named_like_log_record_attributes_are_logged(capsys: pytest.CaptureFixture[str]) -> None:
    # The standard library refuses these in a record's `extra`; the layer-missing and pruned-module
    # lines carry `module`.
    runtime.Logger("runtime-test-keys").error("m", module="sklearn.x%s", name="n", layer="L", rows=3)
    (record,) = log_records(capsys.readouterr().out)
    assert {k: record[k] for k in ("level", "message", "module", "name", "layer", "rows")} == {
        "level": "ERROR",
        "message": "m",
        "module": "sklearn.x%s",
        "name": "n",
        "layer": "L",
        "rows": 3,
    }
    assert record["location"].startswith("test_keys_named_like_log_record_attributes_are_logged:")


def test_a_refused_event_is_a_failed_batch_metric_per_function(capsys: pytest.CaptureFixture[str]) -> None:
    result = handler.lambda_handler({"bucket": "b", "key": "reports/x.json"}, None)
    assert result["status"] == "error"
    (metric,) = [r for r in log_records(capsys.readouterr().out) if "FailedBatches" in r]
    (definition,) = metric["_aws"]["CloudWatchMetrics"]
    # The dashboard's FailedBatches widgets (infra/template.yaml) select these dimensions.
    assert definition == {
        "Namespace": "LambdaMLPipeline",
        "Dimensions": [["function_name", "service"]],
        "Metrics": [{"Name": "FailedBatches", "Unit": "Count"}],
    }
    assert (metric["function_name"], metric["service"], metric["FailedBatches"]) == (
        "DataValidation",
        "data-validation",
        1,
    )


def test_powertools_log_level_setting_applies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Powertools reads POWERTOOLS_LOG_LEVEL (or Lambda's AWS_LAMBDA_LOG_LEVEL): a stage can
    # quieten its functions without a code change.
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    logger = runtime.Logger("runtime-test-level")
    logger.info("not shown")
    logger.warning("shown")
    assert [r["message"] for r in log_records(capsys.readouterr().out)] == ["shown"]


def test_metrics_can_be_turned_off_with_powertools_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    runtime.emit_metric("svc", "FailedBatches", 1, function_name="X")
    assert capsys.readouterr().out == ""
