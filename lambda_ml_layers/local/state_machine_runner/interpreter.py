"""Run a state machine definition: Task, Choice, Map, Pass, Succeed and Fail, with InputPath,
Parameters, ResultSelector, ResultPath and OutputPath, Retry and Catch, as AWS Step Functions does.

Pure but for the injected `invoke(function_logical_id, payload) -> result`: it runs a Lambda
task and raises StatesFailure(errorType, cause) when the function fails, as Step Functions
reports a function error (the Lambda error's name, its error document as the cause). Waits
between retries go through `RunOptions.sleep`, scaled by `retry_wait_scale` (0 in tests).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from .choice_rules import matches
from .definition import LAMBDA_INVOKE, check_definition, function_name
from .failures import NO_CHOICE_MATCHED, RUNTIME, TIMEOUT, StatesFailure
from .history import FAILED, SUCCEEDED, ExecutionResult, HistoryRecorder
from .json_paths import apply_result_path, fill_template, select_input
from .map_state import run_map
from .retries import matching_rule, max_attempts, retry_delay

Invoke = Callable[[str, Any], Any]
ACCOUNT_ARN = "arn:aws:states:us-east-1:123456789012"


@dataclass(frozen=True)
class RunOptions:
    retry_wait_scale: float = 1.0  # multiplies every Retry wait: 0 runs retries at once
    sleep: Callable[[float], None] = time.sleep
    max_transitions: int = 25_000  # AWS caps an execution's history at 25,000 events
    state_machine_name: str = "local"
    execution_name: str = field(default_factory=lambda: uuid.uuid4().hex)


def run_execution(
    definition: dict[str, Any],
    execution_input: Any,
    invoke: Invoke,
    options: RunOptions | None = None,
    functions: Collection[str] | None = None,
) -> ExecutionResult:
    """Check the definition (StateMachineError, exit 29, if it cannot run), then run it to the end."""
    check_definition(definition, functions)
    options = options or RunOptions()
    runner = _Runner(invoke, options, HistoryRecorder())
    context = {
        "Execution": {
            "Id": f"{ACCOUNT_ARN}:execution:{options.state_machine_name}:{options.execution_name}",
            "Name": options.execution_name,
            "Input": execution_input,
            "StartTime": _now(),
        },
        "StateMachine": {
            "Id": f"{ACCOUNT_ARN}:stateMachine:{options.state_machine_name}",
            "Name": options.state_machine_name,
        },
    }
    runner.history.record("ExecutionStarted")
    try:
        output = runner.run_scope(definition, execution_input, context, "")
    except StatesFailure as failure:
        runner.history.record("ExecutionFailed", error=failure.error, cause=failure.cause)
        return ExecutionResult(FAILED, None, failure.error, failure.cause, runner.history.snapshot(), _took(runner))
    runner.history.record("ExecutionSucceeded")
    return ExecutionResult(SUCCEEDED, output, None, None, runner.history.snapshot(), _took(runner))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _took(runner: _Runner) -> float:
    return round(runner.history.elapsed(), 6)


class _Runner:
    def __init__(self, invoke: Invoke, options: RunOptions, history: HistoryRecorder) -> None:
        self.invoke = invoke
        self.options = options
        self.history = history
        self._transitions = 0
        self._lock = threading.Lock()

    def _count_transition(self) -> None:
        with self._lock:
            self._transitions += 1
            if self._transitions > self.options.max_transitions:
                raise StatesFailure(RUNTIME, f"more than {self.options.max_transitions} state transitions (a loop?)")

    def run_scope(self, scope: dict[str, Any], data: Any, context: dict[str, Any], prefix: str) -> Any:
        """Run a scope (the definition, or a Map's ItemProcessor) from StartAt to its end."""
        name: str | None = scope["StartAt"]
        while name is not None:
            self._count_transition()
            current, where = name, f"{prefix}{name}"
            self.history.record("StateEntered", current, where)
            started = time.perf_counter()
            try:
                data, name = self._run_state(current, scope["States"][current], data, context, where)
            except StatesFailure as failure:
                self.history.record("StateFailed", current, where, duration_s=_since(started), **_why(failure))
                raise
            self.history.record("StateExited", current, where, duration_s=_since(started))
        return data

    def _run_state(
        self, name: str, state: dict[str, Any], raw: Any, context: dict[str, Any], where: str
    ) -> tuple[Any, str | None]:
        kind = state["Type"]
        state_context = {**context, "State": {"Name": name, "EnteredTime": _now()}}
        if kind == "Fail":
            raise StatesFailure(str(state.get("Error", "States.Fail")), str(state.get("Cause", "")))
        effective = select_input(state.get("InputPath", "$"), raw, state_context)
        if kind == "Succeed":
            return self._output(state, effective, state_context), None
        if kind == "Choice":
            for rule in state["Choices"]:
                if matches(rule, effective, state_context):
                    return self._output(state, effective, state_context), rule["Next"]
            if "Default" in state:
                return self._output(state, effective, state_context), state["Default"]
            raise StatesFailure(NO_CHOICE_MATCHED, f"no Choices rule of state {name} matched and it has no Default")
        return self._with_retry_and_catch(name, state, raw, state_context, where)

    def _with_retry_and_catch(
        self, name: str, state: dict[str, Any], raw: Any, context: dict[str, Any], where: str
    ) -> tuple[Any, str | None]:
        retriers, catchers = state.get("Retry", []), state.get("Catch", [])
        retries_done = [0] * len(retriers)
        while True:
            try:
                output = self._attempt(name, state, raw, context, where)
                return output, state.get("Next")
            except StatesFailure as failure:
                index = matching_rule(retriers, failure.error)
                if index is not None and retries_done[index] < max_attempts(retriers[index]):
                    wait = retry_delay(retriers[index], retries_done[index]) * self.options.retry_wait_scale
                    retries_done[index] += 1
                    self.history.record("StateRetry", name, where, duration_s=wait, **_why(failure))
                    self.options.sleep(wait)
                    continue
                index = matching_rule(catchers, failure.error)
                if index is None:
                    raise
                catcher = catchers[index]
                self.history.record("StateCaught", name, where, **_why(failure))
                caught = {"Error": failure.error, "Cause": failure.cause}
                return apply_result_path(catcher.get("ResultPath", "$"), raw, caught), catcher["Next"]

    def _attempt(self, name: str, state: dict[str, Any], raw: Any, context: dict[str, Any], where: str) -> Any:
        """One try of a Task, Map or Pass: input filtering, the work, result and output filtering."""
        effective = select_input(state.get("InputPath", "$"), raw, context)
        kind = state["Type"]
        if kind == "Map":
            result: Any = run_map(self, name, state, effective, context, where)
        elif kind == "Pass":
            if "Result" in state:
                result = state["Result"]
            else:
                result = fill_template(state["Parameters"], effective, context) if "Parameters" in state else effective
        else:
            result = self._task(name, state, effective, context, where)
        if "ResultSelector" in state:
            result = fill_template(state["ResultSelector"], result, context)
        return self._output(state, apply_result_path(state.get("ResultPath", "$"), raw, result), context)

    def _output(self, state: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        return select_input(state.get("OutputPath", "$"), data, context)

    def _task(self, name: str, state: dict[str, Any], effective: Any, context: dict[str, Any], where: str) -> Any:
        resource = state["Resource"]
        parameters = fill_template(state["Parameters"], effective, context) if "Parameters" in state else None
        if resource == LAMBDA_INVOKE:
            assert parameters is not None  # checked: a lambda:invoke task has Parameters
            function, payload = function_name(str(parameters["FunctionName"])), parameters.get("Payload", {})
        else:
            function, payload = function_name(resource), effective if parameters is None else parameters
        started = time.perf_counter()
        try:
            result = self.invoke(function, payload)
        except StatesFailure as failure:
            took = _since(started)
            self.history.record("TaskFailed", name, where, duration_s=took, function=function, **_why(failure))
            raise
        took = _since(started)
        self.history.record("TaskSucceeded", name, where, duration_s=took, function=function)
        # Checked when the invocation returns (the sandbox itself enforces the function's Timeout).
        if "TimeoutSeconds" in state and took > float(state["TimeoutSeconds"]):
            raise StatesFailure(TIMEOUT, f"state {name} took {took:.1f} s, over its TimeoutSeconds")
        if resource != LAMBDA_INVOKE:
            return result
        qualifier = parameters.get("Qualifier") if parameters else None
        return {"ExecutedVersion": qualifier or "$LATEST", "Payload": result, "StatusCode": 200}


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 6)


def _why(failure: StatesFailure) -> dict[str, str]:
    return {"error": failure.error, "cause": failure.cause}


def lambda_error_cause(error: dict[str, Any]) -> str:
    """The cause Step Functions gives for a function error: the function's error document as JSON."""
    return json.dumps(error, separators=(",", ":"))
