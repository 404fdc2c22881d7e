"""CreateStack and UpdateStack through the same deploy path as change sets."""

from __future__ import annotations

import threading
from typing import Any

from moto.cloudformation.exceptions import AlreadyExistsException, ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.cloudformation.utils import generate_stack_id

from .release import RESOLVED, StackRelease
from .rollback import deploy_release
from .templates import SAM_TRANSFORM, TransformFailed, as_text

# Stack states from which AWS accepts an update (anything else is "can not be updated").
UPDATABLE = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}


# One deploy at a time: moto has no locking, and the SAM translator keeps its region in a class.
DEPLOY_LOCK = threading.RLock()


def create_stack(
    self: CloudFormationBackend,
    name: str,
    template: str,
    parameters: dict[str, Any],
    notification_arns: list[str] | None = None,
    tags: dict[str, str] | None = None,
    role_arn: str | None = None,
    enable_termination_protection: bool | None = False,
    timeout_in_mins: int | None = None,
    stack_policy_body: str | None = None,
) -> Stack:
    """CreateStack through the same path as a CREATE change set: SAM transform, and a failed
    resource rolls the stack back to ROLLBACK_COMPLETE (stock moto: HTML 500, stack half-made)."""
    with DEPLOY_LOCK:
        if name in [stack.name for stack in self.stacks.values()]:
            raise AlreadyExistsException(f"Stack [{name}] already exists")
        try:
            release = StackRelease.prepare(self, template, parameters)
        except TransformFailed as exc:
            raise ValidationError(message=f"Transform {SAM_TRANSFORM} failed with: {exc}") from exc
        stack = new_stack(
            self,
            name,
            release.given,
            notification_arns,
            tags,
            role_arn,
            enable_termination_protection=enable_termination_protection,
            timeout_in_mins=timeout_in_mins,
            stack_policy_body=stack_policy_body,
        )
        deploy_release(self, stack, release, creating=True)
        return stack


def update_stack(
    self: CloudFormationBackend,
    name: str,
    template: str,
    role_arn: str | None,
    parameters: list[dict[str, Any]],
    tags: dict[str, str] | None,
) -> Stack:
    """UpdateStack through the same path as an UPDATE change set (rollback included);
    "No updates are to be performed." when the template and resolved parameters are unchanged."""
    with DEPLOY_LOCK:
        stack = self.get_stack(name)
        if stack.status not in UPDATABLE:
            raise ValidationError(message=f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.")
        previous = getattr(stack, RESOLVED, None) or {k: as_text(v) for k, v in stack.stack_parameters.items()}
        given = {}
        for parameter in parameters:
            key = parameter["ParameterKey"]
            if parameter.get("UsePreviousValue"):
                if key not in previous:
                    raise ValidationError(message=f"Invalid input for parameter key {key}. Cannot use previous value")
                given[key] = previous[key]
            elif "ParameterValue" in parameter:
                given[key] = parameter["ParameterValue"]
        try:
            release = StackRelease.prepare(self, template, given)
        except TransformFailed as exc:
            raise ValidationError(message=f"Transform {SAM_TRANSFORM} failed with: {exc}") from exc
        if release.same_as(stack):
            raise ValidationError(message="No updates are to be performed.")
        stack.role_arn = role_arn
        if tags is not None:
            stack.tags = tags
        deploy_release(self, stack, release, creating=False)
        return stack


def new_stack(
    backend: CloudFormationBackend,
    name: str,
    parameters: dict[str, str],
    notification_arns: list[str] | None,
    tags: dict[str, str] | None,
    role_arn: str | None,
    **options: Any,
) -> Stack:
    """An empty stack of this backend, registered (what a CREATE change set or CreateStack fills)."""
    stack = Stack(  # type: ignore[abstract]
        stack_id=generate_stack_id(name, backend.region_name, backend.account_id),
        name=name,
        template={},
        parameters=parameters,
        account_id=backend.account_id,
        region_name=backend.region_name,
        notification_arns=notification_arns,
        tags=tags,
        role_arn=role_arn,
        cross_stack_resources=backend.exports,
        **options,
    )
    backend.stacks[stack.stack_id] = stack
    return stack
