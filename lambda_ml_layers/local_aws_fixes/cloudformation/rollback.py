"""Deploying a release to a stack, and rolling back to the previous one when a resource fails."""

from __future__ import annotations

import copy
import warnings
from typing import Any

from moto.cloudformation.models import CloudFormationBackend, Event, Stack

from .release import PROCESSED, RESOLVED, StackRelease
from .update_order import FAILED_RESOURCE, PRISTINE, failure_message, remove_resources, update_resources


def _resource_event(stack: Stack, logical_id: str, resource_type: str, status: str, reason: str) -> None:
    resource = stack.resource_map._parsed_resources.get(logical_id)
    event = Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=str(getattr(resource, "physical_resource_id", "") or ""),
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    )
    event.sendToSns(stack.account_id, stack.region_name, stack.notification_arns)
    stack.events.append(event)


def set_status(stack: Stack, status: str, reason: str | None = None) -> None:
    stack.status = status
    stack._add_stack_event(status, resource_status_reason=reason)


def _refresh(backend: CloudFormationBackend, stack: Stack, release: StackRelease) -> None:
    """Make the stack describe `release`: template, parameters, description, outputs, exports
    (stock execute_change_set stored only the template)."""
    _record_template(stack, release)
    stack.output_map = stack._create_output_map()
    for name, export in list(backend.exports.items()):
        if export.exporting_stack_id == stack.stack_id:
            del backend.exports[name]
    backend._validate_export_uniqueness(stack)
    for export in stack.exports:
        backend.exports[export.name] = export


def _record_template(stack: Stack, release: StackRelease) -> None:
    stack.template = release.template
    setattr(stack, PROCESSED, release.processed)
    setattr(stack, RESOLVED, dict(release.resolved))
    stack.parameters = dict(release.given)
    stack.template_dict = release.template_dict()
    stack.description = stack.template_dict.get("Description")


def _apply(backend: CloudFormationBackend, stack: Stack, release: StackRelease) -> list[str]:
    """Create and update resources for `release`, then describe it; returns what to clean up."""
    removed = update_resources(stack.resource_map, release.template_dict(), release.given)
    _refresh(backend, stack, release)
    return removed


def _cleanup(stack: Stack, removed: list[str], definitions: dict[str, Any]) -> None:
    for name, reason in remove_resources(stack.resource_map, removed, definitions):
        _resource_event(stack, name, str(definitions.get(name, {}).get("Type", "")), "DELETE_FAILED", reason)


def deploy_release(backend: CloudFormationBackend, stack: Stack, release: StackRelease, creating: bool) -> bool:
    """Apply `release` to `stack` as CloudFormation does; on failure roll back. True if applied."""
    verb = "CREATE" if creating else "UPDATE"
    previous = StackRelease.of(stack)
    old_definitions = copy.deepcopy(getattr(stack.resource_map, PRISTINE, None) or {})
    set_status(stack, f"{verb}_IN_PROGRESS", "User Initiated")
    try:
        removed = _apply(backend, stack, release)
    except Exception as exc:
        failed = getattr(exc, FAILED_RESOURCE, None)
        if failed:
            logical_id, resource_type, action = failed
            _resource_event(stack, logical_id, resource_type, f"{action.upper()}_FAILED", failure_message(exc))
            reason = f"The following resource(s) failed to {action}: [{logical_id}]."
        else:
            reason = failure_message(exc)
        if creating:
            # A stack whose create failed keeps the submitted template (GetTemplate and
            # GetTemplateSummary read it; stock moto's change-set stack had only `{}`).
            _record_template(stack, release)
            _roll_back_create(backend, stack, f"{reason} Rollback requested by user." if failed else reason)
        else:
            _roll_back_update(backend, stack, previous, reason)
        return False
    if not creating:
        set_status(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        _cleanup(stack, removed, old_definitions)
    set_status(stack, f"{verb}_COMPLETE")
    return True


def _roll_back_update(backend: CloudFormationBackend, stack: Stack, previous: StackRelease, reason: str) -> None:
    """Re-apply the previous release: resources, template, parameters and outputs as before."""
    set_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS", reason)
    definitions = copy.deepcopy(getattr(stack.resource_map, PRISTINE, None) or {})
    try:
        removed = _apply(backend, stack, previous)
        set_status(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        _cleanup(stack, removed, definitions)
    except Exception as exc:
        _refresh_quietly(backend, stack, previous)
        set_status(stack, "UPDATE_ROLLBACK_FAILED", failure_message(exc))
        return
    set_status(stack, "UPDATE_ROLLBACK_COMPLETE")


def _refresh_quietly(backend: CloudFormationBackend, stack: Stack, release: StackRelease) -> None:
    try:
        _refresh(backend, stack, release)
    except Exception as exc:  # the stack is already failed; its description is best effort
        warnings.warn(f"could not restore the outputs of {stack.name}: {exc}", stacklevel=2)


def _roll_back_create(backend: CloudFormationBackend, stack: Stack, reason: str) -> None:
    """Delete what a failed create made (Retain resources stay, as on AWS): ROLLBACK_COMPLETE."""
    set_status(stack, "ROLLBACK_IN_PROGRESS", reason)
    for name, export in list(backend.exports.items()):
        if export.exporting_stack_id == stack.stack_id:
            del backend.exports[name]
    try:
        stack.resource_map.delete()
    except Exception as exc:
        set_status(stack, "ROLLBACK_FAILED", failure_message(exc))
        return
    # The stack has no resources now. moto's resource map is lazy: left with the template's
    # Resources, listing the stack's resources would create them again.
    stack.resource_map._resource_json_map = {}
    setattr(stack.resource_map, PRISTINE, {})
    set_status(stack, "ROLLBACK_COMPLETE")
