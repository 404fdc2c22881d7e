"""Resources created, updated and removed in CloudFormation's order, each failure named."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import CloudFormationError
from moto.cloudformation.parsing import ResourceMap

RETAINED = {"Retain", "RetainExceptOnCreate"}
# Attributes this package keeps on moto's objects (release.py has the other two).
PRISTINE = "lml_resources"  # ResourceMap: an unmutated copy of the applied Resources section
FAILED_RESOURCE = "lml_failed_resource"  # exception: (logical id, type, "create" | "update")


def failure_message(exc: BaseException) -> str:
    """A failure as a ResourceStatusReason: the service's message and error code, as AWS's
    older resource providers word it ("... (Error Code: InvalidParameterValueException)");
    anything else that went wrong in moto by its exception type."""
    message = str(getattr(exc, "message", None) or exc or type(exc).__name__)
    code = getattr(exc, "error_type", None) or getattr(exc, "code", None)
    if isinstance(exc, CloudFormationError):
        return message
    if isinstance(code, str) and code:
        return f"{message} (Error Code: {code})"
    return f"{type(exc).__name__}: {message}"


_SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}.]+)[^}]*\}")


def references(node: Any) -> set[str]:
    """Names a template fragment depends on: `Ref`, `Fn::GetAtt` and the variables of `Fn::Sub`
    (moto's `get_references_from_template` sees only `Ref`, so a parameter used in a `!Sub`
    changed nothing)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value.split(".")[0] if isinstance(value, str) else value[0] if value else None
                if isinstance(target, str):
                    found.add(target)
            elif key == "Fn::Sub":
                text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
                if isinstance(text, str):
                    found |= set(_SUB_VARIABLE.findall(text)) - set(variables or {})
                found |= references(variables)
            else:
                found |= references(value)
    return found


def same_resource(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def normal(resource: dict[str, Any]) -> dict[str, Any]:
        return {**resource, "Properties": resource.get("Properties") or {}}

    return normal(old) == normal(new)


def update_resources(rmap: ResourceMap, template: dict[str, Any], parameters: dict[str, Any] | None) -> list[str]:
    """Create added and update changed resources (those whose definition or a parameter they
    `Ref` changed); return the removed ones' ids, to delete in the cleanup phase, as
    CloudFormation does: a rollback then finds the old resources still there."""
    old_resources: dict[str, Any] = getattr(rmap, PRISTINE, None) or copy.deepcopy(rmap._resource_json_map)
    old_parameters = dict(rmap.resolved_parameters)
    pristine = copy.deepcopy(template.get("Resources") or {})
    rmap._template = template
    if parameters is not None:
        rmap.input_parameters = parameters
    rmap.resolved_parameters = {}
    rmap.load_mapping()
    rmap.load_parameters()
    rmap.load_conditions()
    changed_parameters = {
        name
        for name in old_parameters.keys() | rmap.resolved_parameters.keys()
        if old_parameters.get(name) != rmap.resolved_parameters.get(name)
    }
    new_resources = template["Resources"]
    rmap._resource_json_map = new_resources
    setattr(rmap, PRISTINE, pristine)

    order = rmap._ResourceMap__get_resources_in_dependency_order()  # type: ignore[attr-defined]
    pending = [
        name
        for name in order
        if name not in old_resources
        or not same_resource(old_resources[name], pristine[name])
        or changed_parameters & references(pristine[name])
    ]
    for name in _dependencies_first(pending, pristine):
        if name not in old_resources:
            rmap[name]  # the lazy map creates it (and what it refers to)
            continue
        updated = parsing.parse_and_update_resource(
            name, new_resources[name], rmap, account_id=rmap._account_id, region_name=rmap._region_name
        )
        if updated is not None:
            rmap._parsed_resources[name] = updated
        # else: moto cannot update this type; stock moto then forgot the resource (its Ref
        # became None). It keeps the resource as it was.
    return [name for name in old_resources if name not in new_resources]


def _dependencies_first(names: list[str], resources: dict[str, Any]) -> list[str]:
    """`names` ordered so that each comes after those it refers to (Ref, GetAtt, Sub, DependsOn)
    among them, as CloudFormation orders a stack operation: a function is updated before the
    version that publishes it, a new layer version is made before the function that lists it.
    Stock moto added everything first, then modified (retrying failures in another pass)."""
    wanted = set(names)
    done: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in visiting:  # a cycle: CloudFormation refuses it; keep going
            return
        visiting.add(name)
        resource = resources.get(name) or {}
        depends_on = resource.get("DependsOn") or []
        needs = references(resource) | set([depends_on] if isinstance(depends_on, str) else depends_on)
        for other in sorted(needs & wanted, key=names.index):
            visit(other)
        visiting.discard(name)
        done.append(name)

    for name in names:
        visit(name)
    return done


def remove_resources(rmap: ResourceMap, names: list[str], definitions: dict[str, Any]) -> list[tuple[str, str]]:
    """The cleanup phase: delete removed resources, keeping those with a Retain DeletionPolicy
    (stock moto deleted them too). Returns (id, reason) of those that could not be deleted:
    AWS reports them as DELETE_FAILED and still completes the update."""
    pending = [name for name in names if name in rmap._parsed_resources]
    failures: dict[str, str] = {}
    for _attempt in range(parsing.MAX_UPDATE_ATTEMPTS):  # dependents go first
        for name in list(pending):
            definition = definitions.get(name) or {}
            resource = rmap._parsed_resources[name]
            try:
                if definition.get("DeletionPolicy") not in RETAINED and resource is not None:
                    rmap._delete_resource(resource, definition)
            except Exception as exc:
                failures[name] = failure_message(exc)
                continue
            pending.remove(name)
            failures.pop(name, None)
            del rmap._parsed_resources[name]
        if not pending:
            break
    return [(name, failures.get(name, "")) for name in pending]


def name_failures(original: Callable[..., Any], action: str) -> Callable[..., Any]:
    """Wrap moto's parse_and_create/update_resource so an exception carries the resource it
    failed on (the innermost: a lazy Ref can create another resource inside)."""

    def wrapper(logical_id: str, resource_json: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return original(logical_id, resource_json, *args, **kwargs)
        except Exception as exc:
            if not hasattr(exc, FAILED_RESOURCE):
                setattr(exc, FAILED_RESOURCE, (logical_id, str(resource_json.get("Type", "")), action))
            raise

    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    return wrapper
