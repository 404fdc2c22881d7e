"""JSONPath as Amazon States Language uses it: reference paths only (`$`, `$.a.b`, `$['a b']`,
`$.items[0]`, and `$$.` for the context object). Wildcards, filters, slices and recursive
descent select many values, which InputPath, ResultPath and a Choice's Variable cannot take
anyway (AWS calls the subset "reference paths"); they are refused before a run, by name.

InputPath, Parameters, ResultSelector, ResultPath and OutputPath are applied as AWS defines them:
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-input-output-filtering.html
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from .failures import RESULT_PATH_MATCH_FAILURE, RUNTIME, StatesFailure

Step = str | int
_STEP = re.compile(r"\.([^.\[\]'\"*?@(),:\s]+)|\['([^'\]]+)'\]|\[(\d+)\]")
_ABSENT = object()


class PathSyntaxError(ValueError):
    """A path the runner does not support; the message says what to write instead."""


@dataclass(frozen=True)
class JsonPath:
    text: str
    context: bool  # `$$.`: the context object, not the state's data
    steps: tuple[Step, ...]


def parse_path(text: str) -> JsonPath:
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathSyntaxError(f"{text!r} is not a path: a path starts with '$' (or '$$.' for the context object)")
    context = text.startswith("$$")
    rest = text[2:] if context else text[1:]
    steps: list[Step] = []
    while rest:
        match = _STEP.match(rest)
        if match is None:
            raise PathSyntaxError(
                f"{text!r}: only reference paths are supported ('$.a.b', \"$['a b']\", '$.list[0]'); "
                f"wildcards, filters, slices and '..' are not (at {rest!r})"
            )
        name, quoted, index = match.groups()
        steps.append(int(index) if index is not None else (name or quoted))
        rest = rest[match.end() :]
    return JsonPath(text, context, tuple(steps))


def _walk(value: Any, steps: tuple[Step, ...]) -> Any:
    for step in steps:
        in_list = isinstance(step, int) and isinstance(value, list) and step < len(value)
        in_object = isinstance(step, str) and isinstance(value, dict) and step in value
        if in_list or in_object:
            value = value[step]
        else:
            return _ABSENT
    return value


def has_path(text: str, data: Any, context: dict[str, Any]) -> bool:
    path = parse_path(text)
    return _walk(context if path.context else data, path.steps) is not _ABSENT


def read_path(text: str, data: Any, context: dict[str, Any]) -> Any:
    """The value at the path; a path that matches nothing fails the execution (States.Runtime),
    as it does on AWS."""
    path = parse_path(text)
    value = _walk(context if path.context else data, path.steps)
    if value is _ABSENT:
        raise StatesFailure(RUNTIME, f"Invalid path '{text}': no value at that path in {_preview(data)}")
    return value


def fill_template(template: Any, data: Any, context: dict[str, Any]) -> Any:
    """Parameters, ItemSelector, ResultSelector: a `key.$` takes the value at its path, the rest is
    copied as written."""
    if isinstance(template, dict):
        filled = {}
        for key, value in template.items():
            if key.endswith(".$"):
                filled[key[:-2]] = read_path(value, data, context)
            else:
                filled[key] = fill_template(value, data, context)
        return filled
    if isinstance(template, list):
        return [fill_template(item, data, context) for item in template]
    return copy.deepcopy(template)


def select_input(input_path: str | None, data: Any, context: dict[str, Any]) -> Any:
    """InputPath and OutputPath: null gives {}; otherwise the value at the path."""
    return {} if input_path is None else read_path(input_path, data, context)


def apply_result_path(result_path: str | None, raw_input: Any, result: Any) -> Any:
    """ResultPath: null keeps the state's input, `$` replaces it, `$.a.b` puts the result there
    (creating objects on the way) in a copy of the input."""
    if result_path is None:
        return raw_input
    steps = parse_path(result_path).steps
    if not steps:
        return result
    merged = copy.deepcopy(raw_input)
    target = merged
    for position, step in enumerate(steps):
        last = position == len(steps) - 1
        if not isinstance(step, str) or not isinstance(target, dict):
            raise StatesFailure(
                RESULT_PATH_MATCH_FAILURE,
                f"Unable to apply ResultPath '{result_path}' to input {_preview(raw_input)}: "
                "it needs an object at every step",
            )
        if last:
            target[step] = result
        else:
            target = target.setdefault(step, {})
    return merged


def template_paths(template: Any, where: str) -> list[tuple[str, str]]:
    """(where, path) of every `key.$` of a payload template, for the check before a run."""
    found = []
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                found.append((f"{where}.{key}", value))
            else:
                found.extend(template_paths(value, f"{where}.{key}"))
    elif isinstance(template, list):
        for index, item in enumerate(template):
            found.extend(template_paths(item, f"{where}[{index}]"))
    return found


def path_problem(text: Any, allow_context: bool = True) -> str | None:
    """Why `text` cannot be used as a path here, or None."""
    if isinstance(text, str) and text.startswith("States."):
        return f"{text!r}: intrinsic functions (States.Format, States.Array, ...) are not supported by the local runner"
    try:
        path = parse_path(text)
    except PathSyntaxError as exc:
        return str(exc)
    if path.context and not allow_context:
        return f"{text!r}: the context object ('$$.') cannot be used here"
    return None


def _preview(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 200 else text[:200] + "..."
