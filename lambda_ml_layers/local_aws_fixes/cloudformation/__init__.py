"""CloudFormation as AWS runs it, for moto 5.2.5's server: SAM transform, change detection on
resolved parameters, outputs after change sets, CloudFormation's update order and rollback.

Where stock moto goes wrong (paths relative to `moto/cloudformation/`, DESIGN.md section 3):
`models.py` stores a SAM template untransformed (an empty stack that reports success); its
change-set CREATE builds the stack with an empty template and `execute_change_set` only stores
the new template (outputs, exports and parameters never rebuilt); `ChangeSet.diff` and the "no
changes" check ignore parameter values or compare stale ones; `execute_change_set` has no
rollback (a TODO) and an error there is an HTML 500 with the stack left `*_COMPLETE`,
half-applied. `parsing.py`'s `ResourceMap.update` deletes removed resources first (ignoring
DeletionPolicy) and drops a modified resource whose type has no update handler.

The fix replaces a few methods on moto's classes (routing binds `CloudFormationResponse.dispatch`
and looks backends and models up at call time, so this takes effect without editing moto):
the backend's create_stack, create_change_set, execute_change_set and update_stack share one
path, `deploy_release`, that applies a `StackRelease` (template, SAM-processed template, parameters) in
CloudFormation's order and rolls back to the previous `StackRelease` when a resource fails.
Everything stays synchronous: when ExecuteChangeSet returns, the stack is complete or rolled back.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.models import ChangeSet, CloudFormationBackend, Stack
from moto.cloudformation.parsing import ResourceMap
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult

from .change_sets import create_change_set, execute_change_set, no_diff, validate_different_update
from .release import PROCESSED
from .stacks import create_stack, update_stack
from .update_order import PRISTINE, name_failures, remove_resources, update_resources


def get_template(self: CloudFormationResponse) -> ActionResult:
    """GetTemplate: the template as submitted (TemplateStage Original, the default), or its SAM
    translation (Processed), as on AWS."""
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    body = stack.template
    if self._get_param("TemplateStage") == "Processed":
        body = getattr(stack, PROCESSED, None) or stack.template
    return ActionResult({"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]})


def _stack_resources(self: Stack) -> list[Any]:
    """The stack's resources for DescribeStackResource(s) and ListStackResources. Stock moto also
    yields None for each resource of a type it does not model (AWS::S3::BucketPolicy, say): the
    answer then held entries without LogicalResourceId. Those are left out."""
    return [resource for resource in self.resource_map.values() if resource is not None]


def _update_and_clean(rmap: ResourceMap, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> None:
    """ResourceMap.update for any other caller (nested stacks): CloudFormation's order."""
    definitions = copy.deepcopy(getattr(rmap, PRISTINE, None) or rmap._resource_json_map)
    remove_resources(rmap, update_resources(rmap, template, parameters), definitions)


_PATCHES: list[tuple[type[Any] | Any, str, Any]] = [
    (CloudFormationBackend, "create_stack", create_stack),
    (CloudFormationBackend, "create_change_set", create_change_set),
    (CloudFormationBackend, "execute_change_set", execute_change_set),
    (CloudFormationBackend, "update_stack", update_stack),
    (ResourceMap, "update", _update_and_clean),
    (ChangeSet, "diff", no_diff),
    (Stack, "stack_resources", property(_stack_resources)),
    (CloudFormationResponse, "get_template", get_template),
    (CloudFormationResponse, "_validate_different_update", validate_different_update),
]


def apply() -> None:
    for owner, name, replacement in _PATCHES:
        setattr(owner, name, replacement)
    for name, action in (("parse_and_create_resource", "create"), ("parse_and_update_resource", "update")):
        current = getattr(parsing, name)
        if not hasattr(current, "__wrapped__"):
            setattr(parsing, name, name_failures(current, action))
