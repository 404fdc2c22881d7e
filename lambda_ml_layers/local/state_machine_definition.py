"""The state machine's definition as infra/template.yaml writes it, ready for a local run.

Reads the resource's `Definition` (SAM) or `DefinitionString` (CloudFormation, JSON text) through
config/template.py's loader, and fills each `${Key}` of DefinitionSubstitutions: a reference to a
function (`!Ref X.Alias`, `!Ref X`, `!GetAtt X.Arn`) becomes the function's logical id, or its ARN
in the moto server the quick run created it in; a literal or a parameter's Default is used as
written. Anything else cannot be known without a deploy and is refused, naming the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.template import FUNCTION_TYPES, load_template
from ..core.errors import StateMachineError, collect

STATE_MACHINE = "PipelineStateMachine"
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class TemplateDefinition:
    definition: dict[str, Any]  # substitutions filled: Tasks name functions by logical id
    functions: frozenset[str]  # every function of the template (what a Task may name)
    substitutions: dict[str, str]  # key -> what it was replaced by


def load_state_machine(
    template_path: Path, logical_id: str = STATE_MACHINE, function_refs: Mapping[str, str] | None = None
) -> TemplateDefinition:
    """The definition with its substitutions filled: a function reference becomes the function's
    logical id, or what `function_refs` maps that id to (its ARN where the function exists)."""
    template = load_template(template_path)
    resources = template["Resources"]
    where = f"{template_path}: {logical_id}"
    resource = resources.get(logical_id)
    if not isinstance(resource, dict) or resource.get("Type") not in STATE_MACHINE_TYPES:
        machines = [
            name for name, r in resources.items() if isinstance(r, dict) and r.get("Type") in STATE_MACHINE_TYPES
        ]
        raise StateMachineError(
            f"{where} is not a state machine of the template (state machines: {', '.join(machines) or 'none'}). "
            "Fix: name one of them."
        )
    properties = resource.get("Properties", {})
    functions = frozenset(
        name for name, r in resources.items() if isinstance(r, dict) and r.get("Type") in FUNCTION_TYPES
    )
    definition = _definition(properties, where)
    refs = function_refs or {}
    substitutions = {
        key: refs.get(found, found)
        for key, value in (properties.get("DefinitionSubstitutions") or {}).items()
        for found in [_substitution(key, value, template, functions, where)]
    }
    problems: list[str] = []
    filled = _fill(definition, substitutions, problems)
    collect(
        sorted(set(problems)),
        StateMachineError,
        f"{where}: the definition uses placeholders DefinitionSubstitutions does not define. "
        "Fix: add each key to DefinitionSubstitutions, or write the value into the definition.",
    )
    return TemplateDefinition(filled, functions, substitutions)


def _of_types(resources: dict[str, Any], types: tuple[str, ...]) -> list[str]:
    return [
        name for name, resource in resources.items() if isinstance(resource, dict) and resource.get("Type") in types
    ]


def _definition(properties: dict[str, Any], where: str) -> dict[str, Any]:
    definition = properties.get("Definition")
    if isinstance(definition, dict):
        return definition
    text = properties.get("DefinitionString")
    if isinstance(text, str):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateMachineError(f"{where}: DefinitionString is not JSON ({exc}). Fix: write valid JSON.") from None
        if isinstance(parsed, dict):
            return parsed
    raise StateMachineError(
        f"{where}: no Definition (an object) or DefinitionString (JSON text) the local runner can read "
        f"(found {sorted(properties)}). Fix: write the definition inline; DefinitionUri, DefinitionS3Location "
        "and intrinsic functions around DefinitionString are not read locally."
    )


def _substitution(key: str, value: Any, template: dict[str, Any], functions: frozenset[str], where: str) -> str:
    """What `${key}` stands for locally: a function's logical id, or a literal."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    target: str | None = None
    if isinstance(value, dict) and set(value) == {"Ref"}:
        target = str(value["Ref"]).removesuffix(".Alias").removesuffix(".Version")
        parameter = template.get("Parameters", {}).get(target)
        if isinstance(parameter, dict) and "Default" in parameter:
            return str(parameter["Default"])
    elif isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        attribute = value["Fn::GetAtt"]
        if isinstance(attribute, list) and len(attribute) == 2 and attribute[1] == "Arn":
            target = str(attribute[0])
    if target in functions:
        return target
    hint = f" ({target!r} is not a function of the template)" if target else ""
    raise StateMachineError(
        f"{where}: DefinitionSubstitutions {key} is {value!r}{hint}, which names no function the local runner can "
        f"invoke (functions: {', '.join(sorted(functions)) or 'none'}). Fix: refer to a function with "
        "!Ref X.Alias, !Ref X or !GetAtt X.Arn, or give a literal value."
    )


def _fill(value: Any, substitutions: dict[str, str], problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {key: _fill(item, substitutions, problems) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, substitutions, problems) for item in value]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            if match[1] not in substitutions:
                problems.append(f"${{{match[1]}}} has no DefinitionSubstitutions entry")
                return match[0]
            return substitutions[match[1]]

        return _PLACEHOLDER.sub(replace, value)
    return value
