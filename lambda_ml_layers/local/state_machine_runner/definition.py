"""The definition checked before anything runs: every state reachable, every Next a state of its
scope, every field and path one the runner executes as AWS does. All problems are listed in one
StateMachineError (exit 29), each naming the state; nothing is half run on a bad definition."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ...core.errors import StateMachineError, collect
from .choice_rules import rule_problems
from .json_paths import path_problem, template_paths
from .retries import catch_problems, retry_problems

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
_LAMBDA_ARN = "arn:aws:lambda:"
_COMMON = {"Type", "Comment", "InputPath", "OutputPath"}
_FLOW = {"Next", "End"}
FIELDS: dict[str, set[str]] = {
    "Task": _COMMON
    | _FLOW
    | {"Resource", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch", "TimeoutSeconds"},
    "Pass": _COMMON | _FLOW | {"Result", "Parameters", "ResultPath"},
    "Choice": _COMMON | {"Choices", "Default"},
    "Map": _COMMON
    | _FLOW
    | {"ItemsPath", "ItemSelector", "Parameters", "ItemProcessor", "Iterator", "MaxConcurrency"}
    | {"ResultSelector", "ResultPath", "Retry", "Catch"},
    "Succeed": _COMMON,
    "Fail": {"Type", "Comment", "Error", "Cause"},
}
_LAMBDA_PARAMETERS = {"FunctionName", "Payload", "Payload.$", "Qualifier", "InvocationType", "LogType", "ClientContext"}
FIX = (
    "Fix: correct the definition (PipelineStateMachine in infra/template.yaml); a feature the local runner "
    "lacks belongs in lambda_ml_layers/local/state_machine_runner/ (docs/pipeline.md, Locally)."
)


def function_name(target: str) -> str:
    """A Lambda function reference as the function's name: `arn:aws:lambda:R:A:function:NAME[:alias]`
    gives NAME; anything else (a logical id after substitution) is the name itself."""
    if target.startswith(_LAMBDA_ARN):
        parts = target.split(":")
        return parts[6] if len(parts) > 6 else target
    return target


def check_definition(definition: Any, functions: Collection[str] | None = None, source: str = "definition") -> None:
    """Raise StateMachineError listing every problem; `functions` (logical ids) enables the check
    that each Task names a function the runner can invoke."""
    problems: list[str] = []
    if not isinstance(definition, dict):
        problems.append("the definition is not an object with StartAt and States")
    else:
        if definition.get("QueryLanguage", "JSONPath") != "JSONPath":
            problems.append("QueryLanguage JSONata is not supported by the local runner; use JSONPath")
        problems += _scope_problems(definition, "", functions)
    collect(problems, StateMachineError, f"{source}: the state machine cannot be run locally. {FIX}")


def _scope_problems(scope: dict[str, Any], prefix: str, functions: Collection[str] | None) -> list[str]:
    states = scope.get("States")
    if not isinstance(states, dict) or not states:
        return [f"{prefix or 'the definition'}: States must be a non-empty object of states"]
    names = set(states)
    problems = []
    if scope.get("StartAt") not in names:
        problems.append(f"{prefix or 'the definition'}: StartAt {scope.get('StartAt')!r} is not one of its states")
    for name, state in states.items():
        problems += _state_problems(name, state, f"{prefix}{name}", names, functions)
    unreachable = names - _reachable(scope)
    problems += [f"state {prefix}{name}: no state leads to it (unreachable)" for name in sorted(unreachable)]
    return problems


def _targets(state: dict[str, Any]) -> list[Any]:
    targets = [state.get("Next"), state.get("Default")]
    targets += [rule.get("Next") for rule in state.get("Choices", []) if isinstance(rule, dict)]
    targets += [catcher.get("Next") for catcher in state.get("Catch", []) if isinstance(catcher, dict)]
    return [target for target in targets if isinstance(target, str)]


def _reachable(scope: dict[str, Any]) -> set[str]:
    states, seen, todo = scope["States"], set[str](), [scope.get("StartAt")]
    while todo:
        name = todo.pop()
        if isinstance(name, str) and name in states and name not in seen:
            seen.add(name)
            if isinstance(states[name], dict):
                todo.extend(_targets(states[name]))
    return seen


def _state_problems(name: str, state: Any, where: str, names: set[str], functions: Collection[str] | None) -> list[str]:
    here = f"state {where}"
    if not isinstance(state, dict):
        return [f"{here} is not an object"]
    kind = state.get("Type")
    if kind not in FIELDS:
        return [f"{here}: Type {kind!r} is not supported by the local runner (supported: {', '.join(sorted(FIELDS))})"]
    unknown = sorted(set(state) - FIELDS[kind])
    problems = [f"{here}: field {key!r} is not supported on a {kind} state" for key in unknown]
    problems += _flow_problems(here, state, kind, names)
    for key in ("InputPath", "OutputPath", "ResultPath", "ItemsPath"):
        if state.get(key) is not None and (problem := path_problem(state[key], allow_context=key != "ResultPath")):
            problems.append(f"{here}.{key}: {problem}")
    for key in ("Parameters", "ItemSelector", "ResultSelector"):
        for place, path in template_paths(state.get(key), f"{here}.{key}"):
            if (problem := path_problem(path)) is not None:
                problems.append(f"{place}: {problem}")
    if "Retry" in state:
        problems += retry_problems(state["Retry"], f"{here}.Retry")
    if "Catch" in state:
        problems += catch_problems(state["Catch"], f"{here}.Catch", names)
    if kind == "Task":
        problems += _task_problems(here, state, functions)
    elif kind == "Choice":
        rules = state.get("Choices")
        if not isinstance(rules, list) or not rules:
            problems.append(f"{here}: Choices must be a non-empty list of rules")
        else:
            for index, rule in enumerate(rules):
                problems += rule_problems(rule, f"{here}.Choices[{index}]")
                if isinstance(rule, dict) and "Next" in rule and rule["Next"] not in names:
                    problems.append(f"{here}.Choices[{index}].Next {rule['Next']!r} is not a state of this scope")
        if "Default" in state and state["Default"] not in names:
            problems.append(f"{here}.Default {state['Default']!r} is not a state of this scope")
    elif kind == "Map":
        problems += _map_problems(here, state, where, functions)
    return problems


def _flow_problems(here: str, state: dict[str, Any], kind: str, names: set[str]) -> list[str]:
    if kind in ("Choice", "Succeed", "Fail"):
        return []
    if state.get("End") is True and "Next" not in state:
        return []
    if "Next" not in state:
        return [f"{here} has neither Next nor End: true (say which state follows, or End: true)"]
    if "End" in state:
        return [f"{here} has both Next and End"]
    if state["Next"] not in names:
        return [f"{here}.Next {state['Next']!r} is not a state of this scope (states: {', '.join(sorted(names))})"]
    return []


def _task_problems(here: str, state: dict[str, Any], functions: Collection[str] | None) -> list[str]:
    resource = state.get("Resource")
    if not isinstance(resource, str):
        return [f"{here}: Resource must be a string"]
    timeout = state.get("TimeoutSeconds", 1)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        return [f"{here}.TimeoutSeconds must be a whole number of seconds >= 1, not {timeout!r}"]
    parameters = state.get("Parameters")
    if resource == LAMBDA_INVOKE:
        if not isinstance(parameters, dict) or not isinstance(parameters.get("FunctionName"), str):
            return [f"{here}: a lambda:invoke Task needs Parameters with a literal FunctionName"]
        problems = [
            f"{here}.Parameters: {key!r} is not supported for lambda:invoke"
            for key in sorted(set(parameters) - _LAMBDA_PARAMETERS)
        ]
        if parameters.get("InvocationType", "RequestResponse") != "RequestResponse":
            problems.append(f"{here}.Parameters.InvocationType: only RequestResponse waits for a result")
        return problems + _function_problems(here, parameters["FunctionName"], functions)
    if resource.startswith("arn:aws:states:::"):
        return [
            f"{here}: Resource {resource!r} is not supported by the local runner; only Lambda tasks "
            f"({LAMBDA_INVOKE}, or a function ARN) are"
        ]
    return _function_problems(here, resource, functions)


def _function_problems(here: str, target: str, functions: Collection[str] | None) -> list[str]:
    if functions is None or function_name(target) in functions:
        return []
    return [
        f"{here}: {target!r} names no function of the template (functions: {', '.join(sorted(functions)) or 'none'}); "
        "use a DefinitionSubstitutions key that refers to one (!Ref X.Alias, !Ref X or !GetAtt X.Arn)"
    ]


def _map_problems(here: str, state: dict[str, Any], where: str, functions: Collection[str] | None) -> list[str]:
    problems = []
    for pair in (("ItemProcessor", "Iterator"), ("ItemSelector", "Parameters")):
        if all(key in state for key in pair):
            problems.append(f"{here}: use {pair[0]} or {pair[1]} (its older name), not both")
    processor = state.get("ItemProcessor", state.get("Iterator"))
    if not isinstance(processor, dict):
        return [*problems, f"{here}: a Map needs an ItemProcessor (or Iterator) with StartAt and States"]
    mode = processor.get("ProcessorConfig", {}).get("Mode", "INLINE")
    if mode != "INLINE":
        problems.append(f"{here}: ProcessorConfig Mode {mode!r} is not supported by the local runner; INLINE is")
    concurrency = state.get("MaxConcurrency", 0)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0:
        problems.append(f"{here}.MaxConcurrency must be a whole number >= 0 (0: no limit), not {concurrency!r}")
    return problems + _scope_problems(processor, f"{where}/", functions)
