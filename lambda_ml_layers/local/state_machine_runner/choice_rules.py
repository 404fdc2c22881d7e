"""A Choice state's rules: `Variable` with one comparison, or And/Or/Not of rules.

As on AWS: a comparison of a value of another type is false (NumericEquals on a string), and a
comparison whose Variable matches nothing fails the execution (States.Runtime), unless the
operator is IsPresent, which exists for exactly that question.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from .failures import RUNTIME, StatesFailure
from .json_paths import has_path, path_problem, read_path

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Callable[[Any], bool]] = {
    "String": lambda value: isinstance(value, str),
    "Numeric": _is_number,
    "Boolean": lambda value: isinstance(value, bool),
}
_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda value: value is None,
    "IsString": _TYPES["String"],
    "IsNumeric": _TYPES["Numeric"],
    "IsBoolean": _TYPES["Boolean"],
}
# Every comparison operator the runner knows, e.g. StringEquals, NumericLessThanEqualsPath.
COMPARISONS = {
    f"{kind}{order}{suffix}"
    for kind in _TYPES
    for order in _ORDER
    if kind != "Boolean" or order == "Equals"
    for suffix in ("", "Path")
}
_LOGICAL = ("And", "Or", "Not")
_RULE_KEYS = {"Variable", "Next", "Comment", *_LOGICAL}


def rule_problems(rule: Any, where: str, top_level: bool = True) -> list[str]:
    """Why a rule cannot be evaluated, checked before a run; empty when it can."""
    if not isinstance(rule, dict):
        return [f"{where} is not an object"]
    problems = []
    if top_level and not isinstance(rule.get("Next"), str):
        problems.append(f"{where} has no Next")
    if not top_level and "Next" in rule:
        problems.append(f"{where}: only a top-level rule has a Next")
    operators = [key for key in rule if key not in _RULE_KEYS] + [key for key in _LOGICAL if key in rule]
    if len(operators) != 1:
        return [*problems, f"{where} must have exactly one operator, found {operators or 'none'}"]
    name = operators[0]
    if name in ("And", "Or"):
        if not isinstance(rule[name], list) or not rule[name]:
            return [*problems, f"{where}.{name} must be a non-empty list of rules"]
        for index, inner in enumerate(rule[name]):
            problems.extend(rule_problems(inner, f"{where}.{name}[{index}]", top_level=False))
        return problems
    if name == "Not":
        return problems + rule_problems(rule[name], f"{where}.Not", top_level=False)
    if name not in COMPARISONS and name not in _TESTS and name != "IsPresent":
        supported = "StringEquals, NumericLessThan, BooleanEquals, IsPresent, IsNull, ..."
        problems.append(f"{where}: operator {name!r} is not supported by the local runner ({supported})")
    if (problem := path_problem(rule.get("Variable"))) is not None:
        problems.append(f"{where}.Variable: {problem}")
    if name.endswith("Path") and (problem := path_problem(rule[name])) is not None:
        problems.append(f"{where}.{name}: {problem}")
    return problems


def matches(rule: dict[str, Any], data: Any, context: dict[str, Any]) -> bool:
    """Whether a (checked) rule holds for the state's input."""
    if "And" in rule:
        return all(matches(inner, data, context) for inner in rule["And"])
    if "Or" in rule:
        return any(matches(inner, data, context) for inner in rule["Or"])
    if "Not" in rule:
        return not matches(rule["Not"], data, context)
    name = next(key for key in rule if key not in _RULE_KEYS)
    variable = rule["Variable"]
    if name == "IsPresent":
        return has_path(variable, data, context) is bool(rule[name])
    if not has_path(variable, data, context):
        raise StatesFailure(
            RUNTIME, f"Invalid path '{variable}': the choice state's condition path references an undefined value"
        )
    value = read_path(variable, data, context)
    if name in _TESTS:
        return _TESTS[name](value) is bool(rule[name])
    expected = read_path(rule[name], data, context) if name.endswith("Path") else rule[name]
    base = name.removesuffix("Path")
    kind = next(k for k in _TYPES if base.startswith(k))
    compare = _ORDER[base.removeprefix(kind)]
    is_kind = _TYPES[kind]
    return is_kind(value) and is_kind(expected) and compare(value, expected)
