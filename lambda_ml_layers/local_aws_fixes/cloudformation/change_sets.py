"""CreateChangeSet and ExecuteChangeSet as on AWS: SAM transform, changes on resolved parameters."""

from __future__ import annotations

from typing import Any

from moto.cloudformation.exceptions import AlreadyExistsException, CloudFormationError, ValidationError
from moto.cloudformation.models import Change, ChangeSet, CloudFormationBackend, Stack
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudformation.utils import generate_changeset_id, validate_create_change_set

from .release import PROCESSED, RESOLVED, StackRelease
from .rollback import deploy_release, set_status
from .stacks import DEPLOY_LOCK, UPDATABLE, new_stack
from .templates import SAM_TRANSFORM, TransformFailed, as_text
from .update_order import references, same_resource

NO_CHANGES = "The submitted information didn't contain changes. Submit different information to create a change set."


class InvalidChangeSetStatus(CloudFormationError):
    code = "InvalidChangeSetStatus"


def create_change_set(
    self: CloudFormationBackend,
    stack_name: str,
    change_set_name: str,
    template: str,
    parameters: dict[str, str],
    description: str,
    change_set_type: str,
    notification_arns: list[str] | None = None,
    tags: dict[str, str] | None = None,
    role_arn: str | None = None,
) -> tuple[str, str]:
    """CreateChangeSet as on AWS: SAM transform (a refused template gives a FAILED change set),
    changes from the resolved parameters too, "didn't contain changes" only when nothing did."""
    with DEPLOY_LOCK:
        validate_create_change_set(change_set_name)
        stack = _stack_for_change_set(self, stack_name, change_set_name, change_set_type, parameters)
        stack = stack or _review_stack(self, stack_name, parameters, notification_arns, tags, role_arn)
        failure = None
        try:
            release = StackRelease.prepare(self, template, parameters)
        except TransformFailed as exc:
            failure = f"Transform {SAM_TRANSFORM} failed with: {exc}"
            release = StackRelease(template, None, {k: as_text(v) for k, v in parameters.items()})
        change_set = ChangeSet(
            change_set_type=change_set_type,
            change_set_id=generate_changeset_id(change_set_name, self.region_name, self.account_id),
            change_set_name=change_set_name,
            stack=stack,
            template=release.processed if release.processed is not None else template,
            parameters=release.given,
            description=description,
            notification_arns=notification_arns,
            tags=tags,
            role_arn=role_arn,
        )
        change_set.template = template
        setattr(change_set, PROCESSED, release.processed)
        setattr(change_set, RESOLVED, release.resolved)
        if failure is None:
            change_set.changes = changes(stack, release)
        if failure is not None:
            change_set.status, change_set.execution_status, change_set.status_reason = "FAILED", "UNAVAILABLE", failure
        elif change_set_type == "UPDATE" and release.same_as(stack):
            change_set.status, change_set.execution_status, change_set.status_reason = (
                "FAILED",
                "UNAVAILABLE",
                NO_CHANGES,
            )
        else:
            change_set.status, change_set.execution_status = "CREATE_COMPLETE", "AVAILABLE"
        self.change_sets[change_set.change_set_id] = change_set
        return change_set.change_set_id, stack.stack_id


def _stack_for_change_set(
    backend: CloudFormationBackend,
    stack_name: str,
    change_set_name: str,
    change_set_type: str,
    parameters: dict[str, Any],
) -> Stack | None:
    """The stack a change set is for: UPDATE needs an updatable one; CREATE reuses one left in
    REVIEW_IN_PROGRESS (stock moto made a second stack of the same name) and refuses any other."""
    if change_set_type == "UPDATE":
        stack = backend.get_stack(stack_name)
        if stack.status not in UPDATABLE:
            raise ValidationError(message=f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.")
        return stack
    for stack in backend.stacks.values():
        if stack.name == stack_name:
            if stack.status != "REVIEW_IN_PROGRESS":
                raise AlreadyExistsException(
                    f"Stack [{stack_name}] already exists and cannot be created again with the changeSet "
                    f"[{change_set_name}]."
                )
            stack.parameters = {k: as_text(v) for k, v in parameters.items()}
            return stack
    return None


def _review_stack(
    backend: CloudFormationBackend,
    stack_name: str,
    parameters: dict[str, Any],
    notification_arns: list[str] | None,
    tags: dict[str, str] | None,
    role_arn: str | None,
) -> Stack:
    parameter_text = {k: as_text(v) for k, v in parameters.items()}
    stack = new_stack(backend, stack_name, parameter_text, notification_arns, tags, role_arn)
    set_status(stack, "REVIEW_IN_PROGRESS", "User Initiated")
    return stack


def changes(stack: Stack, release: StackRelease) -> list[Change]:
    """Add, Modify (definition or a `Ref`ed parameter changed) and Remove, against what the
    stack runs now (stock moto ignored parameters, so a parameter-only change listed nothing)."""
    current = StackRelease.of(stack)
    old = (current.template_dict() if current.template else {}).get("Resources") or {}
    new = release.template_dict().get("Resources") or {}
    changed = {
        name
        for name in current.resolved.keys() | release.resolved.keys()
        if current.resolved.get(name) != release.resolved.get(name)
    }
    result = []
    for name, resource in new.items():
        if name not in old:
            result.append(Change("Add", name, resource.get("Type", "")))
        elif not same_resource(old[name], resource) or changed & references(resource):
            result.append(Change("Modify", name, resource.get("Type", "")))
    result.extend(Change("Remove", name, old[name].get("Type", "")) for name in old if name not in new)
    return result


def execute_change_set(self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None) -> None:
    """ExecuteChangeSet: apply, or roll back on a resource failure (the call still succeeds, as
    on AWS, where execution is asynchronous; the change set ends EXECUTE_FAILED)."""
    with DEPLOY_LOCK:
        change_set = self.describe_change_set(change_set_name)
        if change_set is None:
            raise ValidationError(message=f"ChangeSet [{change_set_name}] does not exist")
        if change_set.execution_status != "AVAILABLE":
            raise InvalidChangeSetStatus(
                f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status "
                f"of [{change_set.execution_status}]"
            )
        stack = self.stacks[change_set.stack_id]
        release = StackRelease(
            change_set.template,
            getattr(change_set, PROCESSED, None),
            dict(change_set.parameters),
            dict(getattr(change_set, RESOLVED, {})),
        )
        change_set.execution_status = "EXECUTE_IN_PROGRESS"
        applied = deploy_release(self, stack, release, creating=change_set.change_set_type != "UPDATE")
        change_set.execution_status = "EXECUTE_COMPLETE" if applied else "EXECUTE_FAILED"
        if applied and change_set.tags:
            stack.tags = dict(change_set.tags)


def validate_different_update(self: CloudFormationResponse, *args: Any, **kwargs: Any) -> None:
    """Stock moto answers CreateChangeSet with a ValidationError when the body text and given
    parameters look unchanged (AWS: a FAILED change set). The backend decides, on resolved values."""


def no_diff(self: ChangeSet) -> list[Change]:
    """ChangeSet's constructor computes changes without parameters; create_change_set sets them."""
    return []
