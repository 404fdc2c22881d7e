"""What each function's `live` alias should run, from the template and the build, and every way
what it runs differs from that. Pure: the reading is in deployed_state.py, the wiring in restore.py.

Compared, per function: the code digest (Lambda's CodeSha256 of the package the build zipped),
the layer version ARNs in order, MemorySize, Timeout, EphemeralStorage, Environment (each
variable), Runtime, Architectures, Handler (all of the version the alias points at), and the
reserved concurrency (ReservedConcurrentExecutions is the function's, not a version's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .deploy_template import replace_refs

# Lambda's own defaults for a property the template leaves out.
_DEFAULTS: dict[str, Any] = {
    "MemorySize": 128,
    "Timeout": 3,
    "EphemeralStorage": 512,
    "Environment": {},
    "Architectures": ["x86_64"],
    "ReservedConcurrentExecutions": None,
}
SETTINGS = (
    "MemorySize",
    "Timeout",
    "EphemeralStorage",
    "Environment",
    "Runtime",
    "Architectures",
    "Handler",
    "ReservedConcurrentExecutions",
)
COMPARED = ("CodeSha256", "Layers", *SETTINGS)
_NUMBERS = frozenset({"MemorySize", "Timeout", "EphemeralStorage", "ReservedConcurrentExecutions"})


@dataclass(frozen=True)
class IntendedFunction:
    code_sha256: str | None  # base64, as Lambda reports it; None when the build's digest is not known
    layers: tuple[str, ...]  # layer version ARNs, in order
    settings: dict[str, Any]  # a name of SETTINGS -> its value (Environment: the variables)
    unknown: dict[str, str]  # a setting (or "Environment NAME") -> why it cannot be known before deploying


class _Unresolved(Exception):
    pass


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rule: maps merge key by key, lists are global + local, anything else the local value."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value


def _first_intrinsic(node: Any) -> str | None:
    """The first function (GetAtt, Sub, an unknown Ref...) left in `node`, as "Name value"."""
    if isinstance(node, dict):
        return f"{next(iter(node))} {node[next(iter(node))]!r}" if node else "{}"
    if isinstance(node, list):
        return next((found for item in node if (found := _first_intrinsic(item))), None)
    return None


def _resolve(value: Any, parameters: dict[str, str], resources: dict[str, str]) -> Any:
    """A literal, a parameter's value, or a resource's physical id (what `Ref` of a bucket or
    table is); anything else (GetAtt, Sub, ...) only CloudFormation knows."""
    resolved = replace_refs(value, {**resources, **parameters})
    if (intrinsic := _first_intrinsic(resolved)) is not None:
        raise _Unresolved(intrinsic)
    return resolved


def intended_function(
    template: dict[str, Any],
    function: str,
    parameters: dict[str, str],
    resources: dict[str, str],
    layers: list[str],
    code_sha256: str | None,
) -> IntendedFunction:
    """What `function`'s live version should be: Globals.Function merged into its Properties as SAM
    merges them, Lambda's defaults for what neither sets. `resources`: logical id -> physical id."""
    properties = merge_globals(
        template.get("Globals", {}).get("Function", {}), template["Resources"][function].get("Properties", {})
    )
    settings: dict[str, Any] = {}
    unknown: dict[str, str] = {}
    for name in SETTINGS:
        raw = properties.get(name, _DEFAULTS.get(name))
        if name == "EphemeralStorage" and isinstance(raw, dict):
            raw = raw.get("Size", _DEFAULTS[name])
        if name == "Environment":
            variables = (raw or {}).get("Variables", {}) if isinstance(raw, dict) else {}
            resolved = {}
            for key, value in variables.items():
                try:
                    resolved[key] = str(_resolve(value, parameters, resources))
                except _Unresolved as exc:
                    unknown[f"Environment {key}"] = str(exc)
            settings[name] = resolved
            continue
        try:
            value = _resolve(raw, parameters, resources)
        except _Unresolved as exc:
            unknown[name] = str(exc)
            continue
        settings[name] = int(value) if name in _NUMBERS and value is not None else value
    return IntendedFunction(code_sha256 or None, tuple(layers), settings, unknown)


def live_values(configuration: dict[str, Any], reserved_concurrency: int | None) -> dict[str, Any]:
    """The compared fields of a version's GetFunctionConfiguration answer (absent ones left out),
    and the function's reserved concurrency (GetFunctionConcurrency)."""
    values: dict[str, Any] = {
        name: configuration[name]
        for name in ("CodeSha256", "MemorySize", "Timeout", "Runtime", "Architectures", "Handler")
        if name in configuration
    }
    values["Layers"] = [layer["Arn"] for layer in configuration.get("Layers", [])]
    if "Size" in configuration.get("EphemeralStorage", {}):
        values["EphemeralStorage"] = configuration["EphemeralStorage"]["Size"]
    # Lambda leaves Environment out of a version that has no variables.
    values["Environment"] = dict(configuration.get("Environment", {}).get("Variables", {}))
    values["ReservedConcurrentExecutions"] = reserved_concurrency
    return values


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


def live_differences(
    where: str, intended: IntendedFunction, live: dict[str, Any], unread: dict[str, str], says: str = "template says"
) -> tuple[list[str], list[str]]:
    """Every difference between `live` (live_values) and `intended`, each named as
    "<where>: MemorySize 1769, template says 3008"; and notes for what could not be compared
    (unknown before deploying, or not read back: `unread`, field -> why)."""
    problems: list[str] = []
    notes = [
        f"{where}: {field} not compared: cannot be known before deploying ({why})"
        for field, why in intended.unknown.items()
    ]
    for field, why in unread.items():
        notes.append(f"{where}: {field} not compared: cannot be read back ({why})")
    expected: dict[str, Any] = {
        "CodeSha256": intended.code_sha256,
        "Layers": list(intended.layers),
        **intended.settings,
    }
    for field in COMPARED:
        if field in unread or field in intended.unknown:
            continue
        if field == "CodeSha256" and intended.code_sha256 is None:
            notes.append(f"{where}: code digest not compared: the build's digest is not known")
            continue
        if field not in expected:
            continue
        if field not in live:
            notes.append(f"{where}: {field} not compared: Lambda's answer has none")
            continue
        if field == "Environment":
            problems += _environment_differences(where, expected[field], live[field], intended.unknown, says)
        elif live[field] != expected[field]:
            label = "reserved concurrency (the function's)" if field == "ReservedConcurrentExecutions" else field
            problems.append(f"{where}: {label} {_shown(live[field])}, {says} {_shown(expected[field])}")
    return problems, notes


def _environment_differences(
    where: str, expected: dict[str, str], live: dict[str, str], unknown: dict[str, str], says: str
) -> list[str]:
    problems = []
    for key in sorted(set(expected) | set(live)):
        if f"Environment {key}" in unknown:
            continue
        if key not in live:
            problems.append(f"{where}: Environment {key} is not set, {says} {expected[key]!r}")
        elif key not in expected:
            problems.append(f"{where}: Environment {key} is {live[key]!r}, {says} nothing of it")
        elif live[key] != expected[key]:
            problems.append(f"{where}: Environment {key} {live[key]!r}, {says} {expected[key]!r}")
    return problems


def intended_functions(
    template: dict[str, Any],
    parameters: dict[str, str],
    resources: dict[str, str],
    layers: dict[str, list[str]],
    code: dict[str, str],
) -> dict[str, IntendedFunction]:
    """intended_function of every function in `layers` (function -> its layer version ARNs);
    `code`: function -> the CodeSha256 its package should have (missing or "": not known)."""
    return {
        function: intended_function(template, function, parameters, resources, arns, code.get(function) or None)
        for function, arns in layers.items()
    }
