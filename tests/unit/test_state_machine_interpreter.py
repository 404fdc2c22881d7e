"""The local Step Functions interpreter on small definitions, with a plain-Python invoke.

The invoke is injected (the interpreter's one dependency), not a patch of project code: these
tests check the interpreter's own rules (paths, Choice, Map, Retry, Catch) against AWS's.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from lambda_ml_layers.core.errors import StateMachineError
from lambda_ml_layers.local.state_machine_runner.failures import StatesFailure
from lambda_ml_layers.local.state_machine_runner.interpreter import RunOptions, run_execution

LAMBDA = "arn:aws:states:::lambda:invoke"
NO_WAIT = RunOptions(retry_wait_scale=0)


def task(function: str, nxt: str | None = None, **extra: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": LAMBDA,
        "Parameters": {"FunctionName": function, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        **extra,
    }
    if nxt is None:
        state["End"] = True
    else:
        state["Next"] = nxt
    return state


def functions(**handlers: Callable[[Any], Any]) -> Callable[[str, Any], Any]:
    def invoke(name: str, payload: Any) -> Any:
        return handlers[name](payload)

    return invoke


def fail_with(error_type: str, message: str = "boom") -> Callable[[Any], Any]:
    def handler(payload: Any) -> Any:
        raise StatesFailure(error_type, json.dumps({"errorType": error_type, "errorMessage": message}))

    return handler


PIPELINE = {
    "StartAt": "Validate",
    "States": {
        "Validate": task("Validate", "Passed?"),
        "Passed?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.status", "StringEquals": "passed", "Next": "Score"}],
            "Default": "Rejected",
        },
        "Rejected": {"Type": "Fail", "Error": "BatchRejected", "Cause": "see the report"},
        "Score": task("Score", "Done"),
        "Done": {"Type": "Succeed"},
    },
}


def test_tasks_and_a_choice_run_in_order_and_the_last_output_is_the_result() -> None:
    invoke = functions(
        Validate=lambda e: {"status": "passed", "rows": len(e["rows"])},
        Score=lambda e: {"status": "ok", "scored": e["rows"]},
    )
    result = run_execution(PIPELINE, {"rows": [1, 2, 3]}, invoke, NO_WAIT)
    assert (result.status, result.output, result.error) == ("SUCCEEDED", {"status": "ok", "scored": 3}, None)
    assert result.states_entered() == ["Validate", "Passed?", "Score", "Done"]
    assert set(result.task_seconds()) == {"Validate", "Score"}
    kinds = [event.kind for event in result.history]
    assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionSucceeded"
    exited = result.events("StateExited")
    assert [e.state for e in exited] == ["Validate", "Passed?", "Score", "Done"]
    assert all(e.duration_s is not None and e.duration_s >= 0 for e in exited)


def test_the_choice_default_leads_to_a_fail_state_with_its_error_and_cause() -> None:
    invoke = functions(Validate=lambda e: {"status": "failed"}, Score=lambda e: pytest.fail("must not run"))
    result = run_execution(PIPELINE, {"rows": []}, invoke, NO_WAIT)
    assert (result.status, result.error, result.cause, result.output) == (
        "FAILED",
        "BatchRejected",
        "see the report",
        None,
    )
    assert result.states_entered() == ["Validate", "Passed?", "Rejected"]


def test_a_function_error_fails_the_execution_with_the_lambda_error_name() -> None:
    result = run_execution(PIPELINE, {}, functions(Validate=fail_with("KeyError", "'bucket'")), NO_WAIT)
    assert result.status == "FAILED" and result.error == "KeyError"
    assert json.loads(result.cause or "")["errorMessage"] == "'bucket'"
    (failed,) = result.events("TaskFailed")
    assert (failed.function, failed.error) == ("Validate", "KeyError")


RETRY = [{"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2}]


def flaky(failures: int, error: str = "Lambda.TooManyRequestsException") -> Callable[[Any], Any]:
    calls = {"n": 0}

    def handler(payload: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= failures:
            fail_with(error)(payload)
        return {"status": "ok", "attempt": calls["n"]}

    return handler


def test_retry_waits_with_backoff_then_succeeds() -> None:
    waits: list[float] = []
    definition = {"StartAt": "T", "States": {"T": task("F", Retry=RETRY)}}
    result = run_execution(definition, {}, functions(F=flaky(2)), RunOptions(sleep=waits.append))
    assert result.status == "SUCCEEDED" and result.output == {"status": "ok", "attempt": 3}
    assert waits == [2.0, 4.0]
    assert [e.error for e in result.events("StateRetry")] == ["Lambda.TooManyRequestsException"] * 2


def test_retry_waits_scale_to_zero_for_tests() -> None:
    waits: list[float] = []
    definition = {"StartAt": "T", "States": {"T": task("F", Retry=RETRY)}}
    result = run_execution(definition, {}, functions(F=flaky(1)), RunOptions(retry_wait_scale=0, sleep=waits.append))
    assert result.status == "SUCCEEDED" and waits == [0.0]


def test_retries_exhausted_then_catch_puts_the_error_at_its_result_path() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": task(
                "F",
                "Never",
                Retry=RETRY,
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handle"}],
            ),
            "Never": {"Type": "Succeed"},
            "Handle": {"Type": "Pass", "End": True},
        },
    }
    result = run_execution(definition, {"batch": "b1"}, functions(F=flaky(10)), NO_WAIT)
    assert result.status == "SUCCEEDED"
    assert result.output["batch"] == "b1" and result.output["error"]["Error"] == "Lambda.TooManyRequestsException"
    assert len(result.events("TaskFailed")) == 4  # the first try and MaxAttempts 3 retries
    assert result.states_entered() == ["T", "Handle"]


def test_an_error_no_retrier_names_is_not_retried() -> None:
    definition = {"StartAt": "T", "States": {"T": task("F", Retry=RETRY)}}
    result = run_execution(definition, {}, functions(F=flaky(1, error="ValueError")), NO_WAIT)
    assert (result.status, result.error) == ("FAILED", "ValueError")
    assert len(result.events("TaskFailed")) == 1


def test_a_runtime_error_is_not_caught_by_states_all() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": task(
                "F", "Ok", Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Ok"}], ResultSelector={"x.$": "$.nope"}
            ),
            "Ok": {"Type": "Succeed"},
        },
    }
    result = run_execution(definition, {}, functions(F=lambda e: {}), NO_WAIT)
    assert result.status == "FAILED" and result.error == "States.Runtime" and "$.nope" in (result.cause or "")


def test_input_parameters_result_selector_result_path_and_output_path_as_aws_applies_them() -> None:
    seen: list[Any] = []
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "InputPath": "$.job",
                "Parameters": {
                    "FunctionName": "F",
                    "Payload": {"key.$": "$.key", "fixed": 1, "run.$": "$$.Execution.Name"},
                },
                "ResultSelector": {"answer.$": "$.Payload.value"},
                "ResultPath": "$.job.result",
                "OutputPath": "$.job",
                "Next": "Keep",
            },
            "Keep": {"Type": "Pass", "Result": {"ignored": True}, "ResultPath": None, "End": True},
        },
    }

    def handler(payload: Any) -> Any:
        seen.append(payload)
        return {"value": 42}

    options = RunOptions(retry_wait_scale=0, execution_name="run-1")
    result = run_execution(definition, {"job": {"key": "k1"}, "other": 0}, functions(F=handler), options)
    assert seen == [{"key": "k1", "fixed": 1, "run": "run-1"}]
    assert result.output == {"key": "k1", "result": {"answer": 42}}


def test_a_direct_function_arn_resource_gets_the_input_and_returns_the_bare_result() -> None:
    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:F:live", "End": True}},
    }
    calls: list[tuple[str, Any]] = []
    result = run_execution(
        definition, {"a": 1}, lambda name, payload: calls.append((name, payload)) or {"b": 2}, NO_WAIT
    )
    assert calls == [("F", {"a": 1})] and result.output == {"b": 2}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.n", "NumericGreaterThan": 3}, True),
        ({"Variable": "$.n", "NumericLessThanEquals": 3}, False),
        ({"Variable": "$.s", "NumericEquals": 5}, False),  # another type: false, not an error
        ({"Variable": "$.flag", "BooleanEquals": True}, True),
        ({"Variable": "$.missing", "IsPresent": False}, True),
        ({"Variable": "$.n", "NumericEqualsPath": "$.same"}, True),
        ({"And": [{"Variable": "$.n", "NumericEquals": 5}, {"Not": {"Variable": "$.s", "StringEquals": "x"}}]}, True),
        ({"Or": [{"Variable": "$.s", "StringEquals": "x"}, {"Variable": "$.flag", "BooleanEquals": False}]}, False),
    ],
)
def test_choice_rules(rule: dict[str, Any], expected: bool) -> None:
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": "yes", "End": True},
            "No": {"Type": "Pass", "Result": "no", "End": True},
        },
    }
    result = run_execution(definition, {"n": 5, "same": 5, "s": "5", "flag": True}, functions(), NO_WAIT)
    assert result.output == ("yes" if expected else "no")


def test_a_choice_on_a_missing_variable_or_with_no_match_fails_as_on_aws() -> None:
    choice = {"Type": "Choice", "Choices": [{"Variable": "$.status", "StringEquals": "ok", "Next": "Done"}]}
    definition = {"StartAt": "C", "States": {"C": choice, "Done": {"Type": "Succeed"}}}
    missing = run_execution(definition, {}, functions(), NO_WAIT)
    assert (missing.status, missing.error) == ("FAILED", "States.Runtime")
    unmatched = run_execution(definition, {"status": "no"}, functions(), NO_WAIT)
    assert (unmatched.status, unmatched.error) == ("FAILED", "States.NoChoiceMatched")


def map_definition(
    max_concurrency: int, processor_key: str = "ItemProcessor", selector_key: str = "ItemSelector"
) -> dict[str, Any]:
    return {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.chunks",
                selector_key: {"key.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "batch.$": "$.batch"},
                processor_key: {"StartAt": "Work", "States": {"Work": task("Work")}},
                "MaxConcurrency": max_concurrency,
                "ResultPath": "$.results",
                "Next": "Merge",
            },
            "Merge": task("Merge"),
        },
    }


class Concurrency:
    """Counts how many invocations run at once."""

    def __init__(self) -> None:
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def test_map_honours_max_concurrency_and_keeps_item_order() -> None:
    running = Concurrency()

    def work(payload: Any) -> Any:
        with running:
            time.sleep(0.05 * (6 - payload["index"]))  # later items finish first
        return {"key": payload["key"], "index": payload["index"], "batch": payload["batch"]}

    chunks = [f"chunks/b/{n}.csv" for n in range(6)]
    result = run_execution(
        map_definition(2), {"batch": "b", "chunks": chunks}, functions(Work=work, Merge=lambda e: e["results"]), NO_WAIT
    )
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [{"key": key, "index": n, "batch": "b"} for n, key in enumerate(chunks)]
    assert running.peak == 2
    started = [e.where for e in result.events("MapIterationStarted")]
    assert sorted(started) == sorted(f"Each[{n}]" for n in range(6))
    assert {e.where for e in result.events("TaskSucceeded") if e.function == "Work"} == {
        f"Each[{n}]/Work" for n in range(6)
    }


def test_map_with_no_limit_runs_every_item_at_once_with_the_legacy_field_names() -> None:
    barrier = threading.Barrier(4, timeout=10)  # breaks (and fails the test) unless all 4 run at once

    def work(payload: Any) -> Any:
        barrier.wait()
        return payload["index"]

    result = run_execution(
        map_definition(0, "Iterator", "Parameters"),
        {"batch": "b", "chunks": ["a", "b", "c", "d"]},
        functions(Work=work, Merge=lambda e: e["results"]),
        NO_WAIT,
    )
    assert (result.status, result.output) == ("SUCCEEDED", [0, 1, 2, 3])


def test_a_failed_iteration_fails_the_map_with_its_error_and_later_items_do_not_start() -> None:
    def work(payload: Any) -> Any:
        if payload["index"] == 0:
            fail_with("Runtime.OutOfMemory")(payload)
        return payload["index"]

    result = run_execution(
        map_definition(1), {"batch": "b", "chunks": list("abcdef")}, functions(Work=work, Merge=lambda e: e), NO_WAIT
    )
    assert (result.status, result.error) == ("FAILED", "Runtime.OutOfMemory")
    assert [e.where for e in result.events("MapIterationStarted")] == ["Each[0]"]
    assert not [e for e in result.events("TaskSucceeded") if e.function == "Merge"]


def test_an_empty_map_gives_an_empty_list() -> None:
    result = run_execution(
        map_definition(2), {"batch": "b", "chunks": []}, functions(Merge=lambda e: e["results"]), NO_WAIT
    )
    assert (result.status, result.output) == ("SUCCEEDED", [])


def test_a_bad_definition_is_refused_before_anything_runs_with_every_problem_named() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": task("Nope", "Missing"),
            "B": {"Type": "Wait", "Seconds": 1, "Next": "A"},
            "C": {"Type": "Pass"},
            "D": {"Type": "Choice", "Choices": [{"Variable": "$.items[*]", "StringEquals": "x", "Next": "A"}]},
        },
    }
    calls: list[str] = []
    with pytest.raises(StateMachineError) as raised:
        run_execution(definition, {}, lambda name, payload: calls.append(name), NO_WAIT, functions={"Known"})
    message = str(raised.value)
    assert raised.value.exit_code == 29 and calls == []
    for fragment in (
        "state A.Next 'Missing' is not a state of this scope",
        "state A: 'Nope' names no function of the template (functions: Known)",
        "state B: Type 'Wait' is not supported by the local runner",
        "state C has neither Next nor End",
        "state D.Choices[0].Variable: '$.items[*]': only reference paths are supported",
        "state B: no state leads to it (unreachable)",
        "Fix: correct the definition",
    ):
        assert fragment in message, message


def test_an_unsupported_integration_or_a_distributed_map_is_refused_by_name() -> None:
    definition = {
        "StartAt": "Put",
        "States": {
            "Put": {"Type": "Task", "Resource": "arn:aws:states:::s3:putObject", "Parameters": {}, "Next": "M"},
            "M": {
                "Type": "Map",
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED"},
                    "StartAt": "W",
                    "States": {"W": {"Type": "Succeed"}},
                },
                "End": True,
            },
        },
    }
    with pytest.raises(StateMachineError) as raised:
        run_execution(definition, {}, functions(), NO_WAIT)
    message = str(raised.value)
    assert "state Put: Resource 'arn:aws:states:::s3:putObject' is not supported" in message
    assert "state M: field 'ItemReader' is not supported on a Map state" in message
    assert "ProcessorConfig Mode 'DISTRIBUTED' is not supported" in message


def test_ctrl_c_in_an_iteration_stops_the_map_without_waiting_for_the_others() -> None:
    release = threading.Event()

    def work(payload: Any) -> Any:
        if payload["index"] == 1:
            raise KeyboardInterrupt
        release.wait(30)  # an invocation that would run long
        return payload["index"]

    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_execution(map_definition(2), {"batch": "b", "chunks": ["a", "b", "c"]}, functions(Work=work), NO_WAIT)
        assert time.monotonic() - started < 5
    finally:
        release.set()


def test_bracket_and_index_paths_and_a_result_path_into_a_non_object_as_aws_treats_them() -> None:
    definition = {
        "StartAt": "Pick",
        "States": {
            "Pick": {"Type": "Pass", "Parameters": {"v.$": "$['odd key'].list[1]"}, "OutputPath": "$.v", "Next": "T"},
            "T": {
                "Type": "Task",
                "Resource": "F",
                "ResultPath": "$.x",
                "Catch": [{"ErrorEquals": ["States.ResultPathMatchFailure"], "Next": "End"}],
                "End": True,
            },
            "End": {"Type": "Succeed"},
        },
    }
    seen: list[Any] = []
    result = run_execution(
        definition, {"odd key": {"list": ["a", "b"]}}, lambda name, payload: seen.append(payload) or 1, NO_WAIT
    )
    assert seen == ["b"]
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["Error"] == "States.ResultPathMatchFailure" and "'$.x'" in result.output["Cause"]


def test_a_map_failure_is_caught_by_the_maps_catch_and_a_slow_task_times_out() -> None:
    definition = map_definition(2)
    definition["States"]["Each"]["Catch"] = [
        {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.failed", "Next": "Merge"}
    ]
    definition["States"]["Each"]["ItemProcessor"]["States"]["Work"]["TimeoutSeconds"] = 1

    def work(payload: Any) -> Any:
        time.sleep(1.1 if payload["index"] == 1 else 0)
        return payload["index"]

    result = run_execution(
        definition, {"batch": "b", "chunks": ["a", "b"]}, functions(Work=work, Merge=lambda e: e["failed"]), NO_WAIT
    )
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["Error"] == "States.Timeout" and "TimeoutSeconds" in result.output["Cause"]
    assert [e.where for e in result.events("StateCaught")] == ["Each"]
