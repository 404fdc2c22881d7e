"""Patch 3: AWS::Lambda::Version, published from the function as this deploy leaves it."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from .model_helpers import (
    invalid_parameter,
    lambda_backend,
    patch_class,
    remember_policies,
    retain_replaced,
    retained_on_delete,
    unchanged,
)

# Configuration fields that do not make a function version different from another.
_NOT_VERSIONED = frozenset({"FunctionArn", "Version", "LastModified", "LastUpdateStatus", "State", "RevisionId"})


# --- 3. AWS::Lambda::Version ----------------------------------------------------------------
#
# Stock: create publishes a version, but `Ref` gives the logical id and `GetAtt Version` nothing
# (no attributes), there is no update or delete handler, and the version is published from the
# function as it was *before* this update: moto's `ResourceMap.update` creates added resources
# before it updates modified ones, whatever depends on what, so a SAM `<Function>Version<hash>`
# added in the same deploy as a function change captures the old code and Layers.
# AWS: the version is created after the function it depends on is updated; `Ref` is the
# version's ARN (`arn:...:function:name:N`), `GetAtt Version` is "N"; if neither code nor
# configuration changed since the last published version the resource fails with "A version
# for this Lambda function exists ( N ). Modify the function to create a new version."; a
# given CodeSha256 must match the function's; the version is deleted when it leaves the stack
# unless DeletionPolicy is Retain (SAM's AutoPublishAlias sets Retain).
# Patch: before publishing, the function this version names is brought up to the template
# being deployed (`_sync_function_with_stack`: the same update handler moto runs later, which
# is then a no-op), so the version carries the new code, configuration and Layers.


def patch_version() -> None:
    from moto.awslambda.models import LambdaVersion

    def create(
        cls: Any,
        /,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = cloudformation_json["Properties"]
        backend = lambda_backend(account_id, region_name)
        function = backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(properties["FunctionName"])
        function = _sync_function_with_stack(function, kwargs.get("StackId"), account_id, region_name)
        expected_sha = properties.get("CodeSha256")
        if expected_sha is not None and expected_sha != function.code_sha_256:
            raise invalid_parameter(
                f"CodeSHA256 ({expected_sha}) is different from current CodeSHA256 in $LATEST "
                f"({function.code_sha_256}). Please try again with the CodeSHA256 in $LATEST."
            )
        published = backend._lambdas._functions[function.function_name]["versions"]
        if published and _version_fingerprint(published[-1]) == _version_fingerprint(function):
            raise _version_exists(published[-1].version)
        function.code_or_config_updated = True  # stock publish_version decides by this flag
        version = backend.publish_version(function.function_name, properties.get("Description", ""))
        resource = cls({"Version": version.version})
        resource.function_name = function.function_name
        resource.arn = version.function_arn
        remember_policies(resource, cloudformation_json)
        return resource

    def update(
        cls: Any,
        /,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        if unchanged(original_resource, cloudformation_json):
            return original_resource
        replacement = create(cls, new_resource_name, cloudformation_json, account_id, region_name)
        if not retain_replaced(cloudformation_json):
            _delete_function_version(original_resource, account_id, region_name)
        return replacement

    def delete(self: Any, account_id: str, region_name: str) -> None:
        if not retained_on_delete(self):
            _delete_function_version(self, account_id, region_name)

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Version":
            return str(self.version)
        if attribute_name == "FunctionArn":
            return self.arn
        raise UnformattedGetAttTemplateException()

    patch_class(
        LambdaVersion,
        physical_resource_id=property(lambda self: self.arn),
        create_from_cloudformation_json=classmethod(create),
        update_from_cloudformation_json=classmethod(update),
        delete=delete,
        has_cfn_attr=classmethod(lambda cls, attr: attr in ("Version", "FunctionArn")),
        get_cfn_attribute=get_cfn_attribute,
    )


def _version_fingerprint(function: Any) -> str:
    """What PublishVersion compares: the code and the configuration, not names or dates."""
    configuration = function.get_configuration()
    kept = {key: value for key, value in configuration.items() if key not in _NOT_VERSIONED}
    return json.dumps(kept, sort_keys=True, default=str)


def _version_exists(number: Any) -> Exception:
    """Lambda's 409 when nothing changed since the last published version, as CloudFormation reports it."""
    from moto.awslambda.exceptions import LambdaClientError

    error = LambdaClientError(
        "ResourceConflictException",
        f"A version for this Lambda function exists ( {number} ). Modify the function to create a new version.",
    )
    error.code = 409
    return error


def _sync_function_with_stack(function: Any, stack_id: str | None, account_id: str, region_name: str) -> Any:
    """Update the function from the stack's template now if moto has not done it yet (see 3.)."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.cloudformation.parsing import parse_and_update_resource

    stack = cloudformation_backends[account_id][region_name].stacks.get(stack_id) if stack_id else None
    if stack is None:
        return function
    resource_map = stack.resource_map
    for logical_id, resource in list(resource_map._parsed_resources.items()):
        if resource is function and logical_id in resource_map._resource_json_map:
            updated = parse_and_update_resource(
                logical_id,
                resource_map._resource_json_map[logical_id],
                resource_map,
                account_id=account_id,
                region_name=region_name,
            )
            if updated is not None:
                resource_map._parsed_resources[logical_id] = updated
                return updated
    return function


def _delete_function_version(resource: Any, account_id: str, region_name: str) -> None:
    from moto.awslambda.exceptions import UnknownFunctionException

    with contextlib.suppress(UnknownFunctionException):  # the function, and every version, is gone already
        lambda_backend(account_id, region_name).delete_function(resource.function_name, str(resource.version))
