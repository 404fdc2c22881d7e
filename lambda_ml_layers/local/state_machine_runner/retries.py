"""Retry and Catch as AWS defines them: the first rule whose ErrorEquals names the error wins;
States.ALL names every error but States.Runtime; States.TaskFailed every error but
States.Timeout and States.Runtime. A retrier waits IntervalSeconds * BackoffRate ** n before
retry n + 1 (at most MaxDelaySeconds), and gives up after MaxAttempts retries."""

from __future__ import annotations

import random
from typing import Any

from .failures import ALL, RUNTIME, TASK_FAILED, TIMEOUT
from .json_paths import path_problem

RETRY_KEYS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy"}
CATCH_KEYS = {"ErrorEquals", "Next", "ResultPath", "Comment"}


def error_matches(error_equals: list[str], error: str) -> bool:
    if error == RUNTIME:
        return False  # a runtime error always fails the execution
    return any(name in (error, ALL) or (name == TASK_FAILED and error != TIMEOUT) for name in error_equals)


def matching_rule(rules: list[dict[str, Any]], error: str) -> int | None:
    """Index of the first Retry or Catch rule that names `error`."""
    return next((index for index, rule in enumerate(rules) if error_matches(rule["ErrorEquals"], error)), None)


def retry_delay(retrier: dict[str, Any], retries_done: int) -> float:
    """Seconds to wait before the next retry, after `retries_done` retries of this retrier."""
    delay = float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** retries_done
    if "MaxDelaySeconds" in retrier:
        delay = min(delay, float(retrier["MaxDelaySeconds"]))
    if retrier.get("JitterStrategy") == "FULL":
        delay = random.uniform(0, delay)  # a spread of waits, not a secret
    return delay


def max_attempts(retrier: dict[str, Any]) -> int:
    return int(retrier.get("MaxAttempts", 3))


def _error_equals_problems(rule: dict[str, Any], where: str) -> list[str]:
    names = rule.get("ErrorEquals")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return [f"{where}.ErrorEquals must be a non-empty list of error names"]
    if ALL in names and len(names) > 1:
        return [f"{where}.ErrorEquals: States.ALL must appear alone"]
    return []


def _all_comes_last(rules: list[Any], where: str) -> list[str]:
    for index, rule in enumerate(rules[:-1]):
        if isinstance(rule, dict) and ALL in (rule.get("ErrorEquals") or []):
            return [f"{where}[{index}]: the rule with States.ALL must be the last one"]
    return []


def retry_problems(retry: Any, where: str) -> list[str]:
    if not isinstance(retry, list):
        return [f"{where} must be a list of retriers"]
    problems = _all_comes_last(retry, where)
    for index, retrier in enumerate(retry):
        here = f"{where}[{index}]"
        if not isinstance(retrier, dict):
            problems.append(f"{here} is not an object")
            continue
        problems += [f"{here}: field {key!r} is not supported" for key in sorted(set(retrier) - RETRY_KEYS)]
        problems += _error_equals_problems(retrier, here)
        for key, minimum in (("IntervalSeconds", 1), ("MaxAttempts", 0), ("BackoffRate", 1), ("MaxDelaySeconds", 1)):
            value = retrier.get(key, minimum)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
                problems.append(f"{here}.{key} must be a number >= {minimum}, not {value!r}")
        if retrier.get("JitterStrategy", "NONE") not in ("NONE", "FULL"):
            problems.append(f"{here}.JitterStrategy must be NONE or FULL")
    return problems


def catch_problems(catch: Any, where: str, state_names: set[str]) -> list[str]:
    if not isinstance(catch, list):
        return [f"{where} must be a list of catchers"]
    problems = _all_comes_last(catch, where)
    for index, catcher in enumerate(catch):
        here = f"{where}[{index}]"
        if not isinstance(catcher, dict):
            problems.append(f"{here} is not an object")
            continue
        problems += [f"{here}: field {key!r} is not supported" for key in sorted(set(catcher) - CATCH_KEYS)]
        problems += _error_equals_problems(catcher, here)
        if catcher.get("Next") not in state_names:
            problems.append(f"{here}.Next {catcher.get('Next')!r} is not a state of this scope")
        result_path = catcher.get("ResultPath", "$")
        if result_path is not None and (problem := path_problem(result_path, allow_context=False)):
            problems.append(f"{here}.ResultPath: {problem}")
    return problems
