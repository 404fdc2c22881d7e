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
path, `_deploy`, that applies a `_Release` (template, SAM-processed template, parameters) in
CloudFormation's order and rolls back to the previous `_Release` when a resource fails.
Everything stays synchronous: when ExecuteChangeSet returns, the stack is complete or rolled back.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import AlreadyExistsException, CloudFormationError, ValidationError
from moto.cloudformation.models import Change, ChangeSet, CloudFormationBackend, Event, Stack
from moto.cloudformation.parsing import ResourceMap
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudformation.utils import generate_changeset_id, generate_stack_id, validate_create_change_set
from moto.core.responses import ActionResult

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
NO_CHANGES = "The submitted information didn't contain changes. Submit different information to create a change set."
# Stack states from which AWS accepts an update (anything else is "can not be updated").
UPDATABLE = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}
RETAINED = {"Retain", "RetainExceptOnCreate"}
# Attributes this module keeps on moto's objects.
PROCESSED = "lml_processed_template"  # Stack/ChangeSet: the SAM translation (JSON), or None
RESOLVED = "lml_resolved_parameters"  # Stack/ChangeSet: every parameter's value, as text
PRISTINE = "lml_resources"  # ResourceMap: an unmutated copy of the applied Resources section
FAILED_RESOURCE = "lml_failed_resource"  # exception: (logical id, type, "create" | "update")

# One deploy at a time: moto has no locking, and the SAM translator keeps its region in a class.
_LOCK = threading.RLock()


class InvalidChangeSetStatus(CloudFormationError):
    code = "InvalidChangeSetStatus"


class TransformFailed(Exception):
    """The SAM translator refused the template; the message is what AWS reports."""


# --- templates and parameters -----------------------------------------------------------


def parse(body: str | dict[str, Any]) -> dict[str, Any]:
    """A fresh dict of a template (moto mutates the dicts it deploys from, so diffs never use those)."""
    if isinstance(body, dict):
        return copy.deepcopy(body)
    try:
        parsed = Stack.parse_template(body)
    except Exception as exc:
        raise ValidationError(message=f"Template format error: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ValidationError(message="Template format error: the template is not a JSON or YAML object")
    return parsed


def has_sam_transform(template: dict[str, Any]) -> bool:
    transform = template.get("Transform")
    return SAM_TRANSFORM in (transform if isinstance(transform, list) else [transform])


def as_text(value: Any) -> str:
    """A parameter value as the API shows it (moto keeps lists and numbers after resolving)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(as_text(item) for item in value)
    return str(value)


def resolve_parameters(template: dict[str, Any], given: dict[str, Any]) -> dict[str, str]:
    """Every declared parameter's value (given, else its Default) as text; a declared parameter
    with neither is AWS's ValidationError, raised before anything changes."""
    resolved: dict[str, str] = {}
    missing = []
    for name, slot in (template.get("Parameters") or {}).items():
        value = given.get(name, slot.get("Default") if isinstance(slot, dict) else None)
        if value is None:
            missing.append(name)
        else:
            resolved[name] = as_text(value)
    if missing:
        raise ValidationError(message=f"Parameters: [{', '.join(missing)}] must have values")
    for name, value in resolved.items():
        check_parameter(name, template["Parameters"][name], value)
    return resolved


def check_parameter(name: str, slot: dict[str, Any], value: str) -> None:
    """A parameter's constraints, checked as AWS does before anything changes (stock moto
    accepts any value, so a deploy AWS would refuse passes locally)."""
    values = (
        value.split(",") if str(slot.get("Type", "String")).startswith(("List<", "CommaDelimitedList")) else [value]
    )
    for item in values:
        problem = None
        if "AllowedValues" in slot and item not in [as_text(allowed) for allowed in slot["AllowedValues"]]:
            problem = "must be one of AllowedValues"
        elif "AllowedPattern" in slot and re.fullmatch(str(slot["AllowedPattern"]), item) is None:
            problem = f"must match pattern {slot['AllowedPattern']}"
        elif "MinLength" in slot and len(item) < int(slot["MinLength"]):
            problem = f"must contain at least {slot['MinLength']} characters"
        elif "MaxLength" in slot and len(item) > int(slot["MaxLength"]):
            problem = f"must contain at most {slot['MaxLength']} characters"
        elif slot.get("Type") in ("Number", "List<Number>"):
            try:
                number = float(item)
            except ValueError:
                problem = "must be a number"
            else:
                if "MinValue" in slot and number < float(slot["MinValue"]):
                    problem = f"must be a number not less than {slot['MinValue']}"
                elif "MaxValue" in slot and number > float(slot["MaxValue"]):
                    problem = f"must be a number not greater than {slot['MaxValue']}"
        if problem:
            raise ValidationError(message=f"Parameter '{name}' {problem}")


class _AwsManagedPolicyArns(dict[str, str]):
    """The translator's last resort for a managed policy name its bundled map lacks (it asks
    IAM otherwise; moto lists no AWS managed policies by default): the AWS managed policy ARN."""

    def get(self, name: str, default: Any = None) -> str:
        return f"arn:aws:iam::aws:policy/{name}"


def sam_translate(template: dict[str, Any], parameters: dict[str, str], account_id: str, region: str) -> dict[str, Any]:
    """The real SAM translator's output for `template` (what CloudFormation's transform gives)."""
    try:
        import boto3  # type: ignore[import-untyped]
        from samtranslator.model.exceptions import InvalidDocumentException  # type: ignore[import-untyped]
        from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
        from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]
        from samtranslator.utils.py27hash_fix import (  # type: ignore[import-untyped]
            to_py27_compatible_template,
            undo_mark_unicode_str_in_template,
        )
    except ImportError as exc:
        raise TransformFailed(
            f"the SAM translator is not installed in the moto server's python ({exc}). Fix: install "
            "aws-sam-translator (requirements/dev.txt) into the interpreter that runs the server"
        ) from exc
    values = {**parameters, "AWS::Region": region, "AWS::AccountId": account_id, "AWS::Partition": "aws"}
    fragment = copy.deepcopy(template)
    try:
        to_py27_compatible_template(fragment, values)
        translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
        translated = translator.translate(
            fragment, parameter_values=values, get_managed_policy_map=_AwsManagedPolicyArns
        )
        result: dict[str, Any] = undo_mark_unicode_str_in_template(translated)
    except InvalidDocumentException as exc:
        # AWS: "Invalid Serverless Application Specification document. Number of errors found: 1.
        # Resource with id [X] is invalid. ..."
        raise TransformFailed(" ".join([exc.message, *(str(cause.message) for cause in exc.causes)])) from exc
    except Exception as exc:  # the translator's own bugs: still a failed transform, not an HTTP 500
        raise TransformFailed(f"{type(exc).__name__}: {exc}") from exc
    return result


@dataclass
class _Release:
    """What a deploy applies: the template as submitted, its SAM translation (None for plain
    CloudFormation) and its parameters, as given and as resolved."""

    template: str | dict[str, Any]
    processed: str | None
    given: dict[str, str]
    resolved: dict[str, str] = field(default_factory=dict)

    def template_dict(self) -> dict[str, Any]:
        """The CloudFormation template that is deployed (the translation of a SAM template)."""
        return parse(self.processed if self.processed is not None else self.template)

    @classmethod
    def prepare(cls, backend: CloudFormationBackend, template: str, given: dict[str, Any]) -> _Release:
        """Resolve parameters and run the SAM transform; ValidationError for a template AWS would
        refuse at once, TransformFailed when the SAM translator refuses it."""
        original = parse(template)
        if not isinstance(original.get("Resources"), dict) or not original["Resources"]:
            raise ValidationError(message="Template format error: At least one Resources member must be defined.")
        given_text = {key: as_text(value) for key, value in given.items()}
        resolved = resolve_parameters(original, given_text)
        release = cls(template, None, given_text, resolved)
        if has_sam_transform(original):
            processed = sam_translate(original, resolved, backend.account_id, backend.region_name)
            release.processed = json.dumps(processed)
        return release

    @classmethod
    def of(cls, stack: Stack) -> _Release:
        """The release a stack runs now (what a rollback returns to)."""
        return cls(
            stack.template,
            getattr(stack, PROCESSED, None),
            dict(stack.parameters or {}),
            dict(getattr(stack, RESOLVED, {})),
        )

    def same_as(self, stack: Stack) -> bool:
        """No change: the deployed template and the resolved parameter values are both equal."""
        current = _Release.of(stack)
        return current.template_dict() == self.template_dict() and current.resolved == self.resolved


def _message(exc: BaseException) -> str:
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


# --- resources: CloudFormation's update order, failures named ------------------------------


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


def _same_resource(old: dict[str, Any], new: dict[str, Any]) -> bool:
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
        or not _same_resource(old_resources[name], pristine[name])
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
                failures[name] = _message(exc)
                continue
            pending.remove(name)
            failures.pop(name, None)
            del rmap._parsed_resources[name]
        if not pending:
            break
    return [(name, failures.get(name, "")) for name in pending]


def _name_failures(original: Callable[..., Any], action: str) -> Callable[..., Any]:
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


# --- deploying a release, and rolling back ------------------------------------------------


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


def _set_status(stack: Stack, status: str, reason: str | None = None) -> None:
    stack.status = status
    stack._add_stack_event(status, resource_status_reason=reason)


def _refresh(backend: CloudFormationBackend, stack: Stack, release: _Release) -> None:
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


def _record_template(stack: Stack, release: _Release) -> None:
    stack.template = release.template
    setattr(stack, PROCESSED, release.processed)
    setattr(stack, RESOLVED, dict(release.resolved))
    stack.parameters = dict(release.given)
    stack.template_dict = release.template_dict()
    stack.description = stack.template_dict.get("Description")


def _apply(backend: CloudFormationBackend, stack: Stack, release: _Release) -> list[str]:
    """Create and update resources for `release`, then describe it; returns what to clean up."""
    removed = update_resources(stack.resource_map, release.template_dict(), release.given)
    _refresh(backend, stack, release)
    return removed


def _cleanup(stack: Stack, removed: list[str], definitions: dict[str, Any]) -> None:
    for name, reason in remove_resources(stack.resource_map, removed, definitions):
        _resource_event(stack, name, str(definitions.get(name, {}).get("Type", "")), "DELETE_FAILED", reason)


def _deploy(backend: CloudFormationBackend, stack: Stack, release: _Release, creating: bool) -> bool:
    """Apply `release` to `stack` as CloudFormation does; on failure roll back. True if applied."""
    verb = "CREATE" if creating else "UPDATE"
    previous = _Release.of(stack)
    old_definitions = copy.deepcopy(getattr(stack.resource_map, PRISTINE, None) or {})
    _set_status(stack, f"{verb}_IN_PROGRESS", "User Initiated")
    try:
        removed = _apply(backend, stack, release)
    except Exception as exc:
        failed = getattr(exc, FAILED_RESOURCE, None)
        if failed:
            logical_id, resource_type, action = failed
            _resource_event(stack, logical_id, resource_type, f"{action.upper()}_FAILED", _message(exc))
            reason = f"The following resource(s) failed to {action}: [{logical_id}]."
        else:
            reason = _message(exc)
        if creating:
            # A stack whose create failed keeps the submitted template (GetTemplate and
            # GetTemplateSummary read it; stock moto's change-set stack had only `{}`).
            _record_template(stack, release)
            _roll_back_create(backend, stack, f"{reason} Rollback requested by user." if failed else reason)
        else:
            _roll_back_update(backend, stack, previous, reason)
        return False
    if not creating:
        _set_status(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        _cleanup(stack, removed, old_definitions)
    _set_status(stack, f"{verb}_COMPLETE")
    return True


def _roll_back_update(backend: CloudFormationBackend, stack: Stack, previous: _Release, reason: str) -> None:
    """Re-apply the previous release: resources, template, parameters and outputs as before."""
    _set_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS", reason)
    definitions = copy.deepcopy(getattr(stack.resource_map, PRISTINE, None) or {})
    try:
        removed = _apply(backend, stack, previous)
        _set_status(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        _cleanup(stack, removed, definitions)
    except Exception as exc:
        _refresh_quietly(backend, stack, previous)
        _set_status(stack, "UPDATE_ROLLBACK_FAILED", _message(exc))
        return
    _set_status(stack, "UPDATE_ROLLBACK_COMPLETE")


def _refresh_quietly(backend: CloudFormationBackend, stack: Stack, release: _Release) -> None:
    try:
        _refresh(backend, stack, release)
    except Exception as exc:  # the stack is already failed; its description is best effort
        warnings.warn(f"could not restore the outputs of {stack.name}: {exc}", stacklevel=2)


def _roll_back_create(backend: CloudFormationBackend, stack: Stack, reason: str) -> None:
    """Delete what a failed create made (Retain resources stay, as on AWS): ROLLBACK_COMPLETE."""
    _set_status(stack, "ROLLBACK_IN_PROGRESS", reason)
    for name, export in list(backend.exports.items()):
        if export.exporting_stack_id == stack.stack_id:
            del backend.exports[name]
    try:
        stack.resource_map.delete()
    except Exception as exc:
        _set_status(stack, "ROLLBACK_FAILED", _message(exc))
        return
    # The stack has no resources now. moto's resource map is lazy: left with the template's
    # Resources, listing the stack's resources would create them again.
    stack.resource_map._resource_json_map = {}
    setattr(stack.resource_map, PRISTINE, {})
    _set_status(stack, "ROLLBACK_COMPLETE")


# --- the backend's API methods -----------------------------------------------------------


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
    with _LOCK:
        if name in [stack.name for stack in self.stacks.values()]:
            raise AlreadyExistsException(f"Stack [{name}] already exists")
        try:
            release = _Release.prepare(self, template, parameters)
        except TransformFailed as exc:
            raise ValidationError(message=f"Transform {SAM_TRANSFORM} failed with: {exc}") from exc
        stack = _new_stack(
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
        _deploy(self, stack, release, creating=True)
        return stack


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
    with _LOCK:
        validate_create_change_set(change_set_name)
        stack = _stack_for_change_set(self, stack_name, change_set_name, change_set_type, parameters)
        stack = stack or _review_stack(self, stack_name, parameters, notification_arns, tags, role_arn)
        failure = None
        try:
            release = _Release.prepare(self, template, parameters)
        except TransformFailed as exc:
            failure = f"Transform {SAM_TRANSFORM} failed with: {exc}"
            release = _Release(template, None, {k: as_text(v) for k, v in parameters.items()})
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
    stack = _new_stack(backend, stack_name, parameter_text, notification_arns, tags, role_arn)
    _set_status(stack, "REVIEW_IN_PROGRESS", "User Initiated")
    return stack


def _new_stack(
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


def changes(stack: Stack, release: _Release) -> list[Change]:
    """Add, Modify (definition or a `Ref`ed parameter changed) and Remove, against what the
    stack runs now (stock moto ignored parameters, so a parameter-only change listed nothing)."""
    current = _Release.of(stack)
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
        elif not _same_resource(old[name], resource) or changed & references(resource):
            result.append(Change("Modify", name, resource.get("Type", "")))
    result.extend(Change("Remove", name, old[name].get("Type", "")) for name in old if name not in new)
    return result


def execute_change_set(self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None) -> None:
    """ExecuteChangeSet: apply, or roll back on a resource failure (the call still succeeds, as
    on AWS, where execution is asynchronous; the change set ends EXECUTE_FAILED)."""
    with _LOCK:
        change_set = self.describe_change_set(change_set_name)
        if change_set is None:
            raise ValidationError(message=f"ChangeSet [{change_set_name}] does not exist")
        if change_set.execution_status != "AVAILABLE":
            raise InvalidChangeSetStatus(
                f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status "
                f"of [{change_set.execution_status}]"
            )
        stack = self.stacks[change_set.stack_id]
        release = _Release(
            change_set.template,
            getattr(change_set, PROCESSED, None),
            dict(change_set.parameters),
            dict(getattr(change_set, RESOLVED, {})),
        )
        change_set.execution_status = "EXECUTE_IN_PROGRESS"
        applied = _deploy(self, stack, release, creating=change_set.change_set_type != "UPDATE")
        change_set.execution_status = "EXECUTE_COMPLETE" if applied else "EXECUTE_FAILED"
        if applied and change_set.tags:
            stack.tags = dict(change_set.tags)


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
    with _LOCK:
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
            release = _Release.prepare(self, template, given)
        except TransformFailed as exc:
            raise ValidationError(message=f"Transform {SAM_TRANSFORM} failed with: {exc}") from exc
        if release.same_as(stack):
            raise ValidationError(message="No updates are to be performed.")
        stack.role_arn = role_arn
        if tags is not None:
            stack.tags = tags
        _deploy(self, stack, release, creating=False)
        return stack


# --- responses ----------------------------------------------------------------------------


def get_template(self: CloudFormationResponse) -> ActionResult:
    """GetTemplate: the template as submitted (TemplateStage Original, the default), or its SAM
    translation (Processed), as on AWS."""
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    body = stack.template
    if self._get_param("TemplateStage") == "Processed":
        body = getattr(stack, PROCESSED, None) or stack.template
    return ActionResult({"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]})


def _validate_different_update(self: CloudFormationResponse, *args: Any, **kwargs: Any) -> None:
    """Stock moto answers CreateChangeSet with a ValidationError when the body text and given
    parameters look unchanged (AWS: a FAILED change set). The backend decides, on resolved values."""


def _stack_resources(self: Stack) -> list[Any]:
    """The stack's resources for DescribeStackResource(s) and ListStackResources. Stock moto also
    yields None for each resource of a type it does not model (AWS::S3::BucketPolicy, say): the
    answer then held entries without LogicalResourceId. Those are left out."""
    return [resource for resource in self.resource_map.values() if resource is not None]


def _no_diff(self: ChangeSet) -> list[Change]:
    """ChangeSet's constructor computes changes without parameters; create_change_set sets them."""
    return []


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
    (ChangeSet, "diff", _no_diff),
    (Stack, "stack_resources", property(_stack_resources)),
    (CloudFormationResponse, "get_template", get_template),
    (CloudFormationResponse, "_validate_different_update", _validate_different_update),
]


def apply() -> None:
    for owner, name, replacement in _PATCHES:
        setattr(owner, name, replacement)
    for name, action in (("parse_and_create_resource", "create"), ("parse_and_update_resource", "update")):
        current = getattr(parsing, name)
        if not hasattr(current, "__wrapped__"):
            setattr(parsing, name, _name_failures(current, action))
