"""Resource-model fixes for moto 5.2.5: what CloudFormation builds must look like what AWS builds.

`apply()` changes moto's model classes in place (in this process, before the server starts);
it is idempotent. The CloudFormation engine itself (SAM transform, change sets, rollback) is
fixed in `cloudformation.py`; this module only fixes what a single resource does when the
stack creates, updates or deletes it. Each patch below says what stock moto 5.2.5 does, what
AWS does, and what the patch does (DESIGN.md section 3).

Conventions shared by every patched resource type:

- Policies. Every create/update remembers the resource's `DeletionPolicy` and
  `UpdateReplacePolicy` (`_remember_policies`). Stock moto honours `DeletionPolicy: Retain`
  only when the whole stack is deleted; when an update removes a resource from the template
  (`ResourceMap.update`, "Remove") it deletes it anyway. AWS keeps it in both cases, and keeps
  a replaced resource whose `UpdateReplacePolicy` is Retain. The patched `delete` methods check
  the remembered policy.
- No-op updates. moto calls a type's update handler whenever the template text of a resource
  changed, even if its resolved properties did not (a changed DeletionPolicy, say). AWS then
  changes nothing: each patched handler compares the resolved properties with the ones it
  last applied (`_cfn_properties`) and only refreshes the policies.
- Errors are moto's own `JsonRESTError` subclasses with AWS's code and message, raised out of
  the handler, so the stack operation fails and the CloudFormation fixes can roll it back.

Patches (numbered as in the code and in tests/integration/test_local_aws_resources.py):
1. AWS::Lambda::LayerVersion: `Ref` is the version ARN, LayerName, S3 content with AWS's
   CodeSha256/CodeSize, CompatibleArchitectures, update = replacement, delete unless Retain.
2. AWS::Lambda::Function: every property on create and update (Layers above all), layer checks
   with AWS's errors (also for the Lambda API), code updates from S3, FunctionName replacement.
3. AWS::Lambda::Version: published from the updated function, `Ref` = version ARN, `GetAtt
   Version`, AWS's "A version for this Lambda function exists" when nothing changed, Retain.
4. AWS::Lambda::Alias: a new model (create, move, RoutingConfig, replace, delete).
5. AWS::StepFunctions::StateMachine: DefinitionSubstitutions, Definition and
   DefinitionS3Location, StateMachineType, `GetAtt Arn`, updates and replacement.
6. (the template's other types work in stock moto, or are harmlessly skipped: see below)
7. Lambda's 262,144,000-byte unzipped limit, for layers and a function with its layers.
8. AWS::CloudWatch::Alarm: a new model (create, update keeping state, replace, delete).
9. AWS::Logs::LogGroup: RetentionInDays updates.

Still different from AWS:
- A replaced resource (same logical id, a property that forces replacement) is deleted at once,
  not in the cleanup phase after the whole update succeeded; a rollback then creates it again
  (a replaced layer version comes back with a new version number). SAM gives changed layers and
  versions new logical ids instead, so infra/template.yaml does not meet this.
- Publishing a version from the updated function relies on moto's ResourceMap internals
  (`_parsed_resources`, `_resource_json_map`), pinned with the moto version.
- A version created by a deploy that is then rolled back is retained (DeletionPolicy Retain), so
  retrying the same deploy fails with "A version for this Lambda function exists ( N )": that is
  AWS's rule as documented for Retain and PublishVersion, not verified against an account.
- Deleting a version an alias points to is allowed (AWS: ResourceConflictException); a layer's
  CompatibleRuntimes/Architectures are not enforced (nor are they on AWS); layer permissions and
  other accounts' layers are not modelled; metric-math (`Metrics`) and composite alarms are
  stored without their queries or rule; tags of log groups are not updated; CloudFormation's
  aws:cloudformation:* tags are not added.
- Types of the template moto still skips, harmlessly (nothing reads them back):
  AWS::S3::BucketPolicy. Elsewhere: AWS::SNS::Subscription, AWS::CodeDeploy::*,
  AWS::Logs::MetricFilter, among others.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import re
import zipfile
from importlib import metadata
from typing import Any

from ..errors import LocalAWSError

MOTO_VERSION = "5.2.5"
MAX_LAYERS = 5
UNZIPPED_LIMIT = 262_144_000  # bytes: a function's code plus all its layers, unzipped
# AWS's own pattern for an entry of a function's Layers (from its ValidationException).
LAYER_ARN_PATTERN = (
    r"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)"
    r"|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
# Configuration fields that do not make a function version different from another.
_NOT_VERSIONED = frozenset({"FunctionArn", "Version", "LastModified", "LastUpdateStatus", "State", "RevisionId"})

_applied = False


def apply() -> None:
    """Patch moto's resource models in this process (idempotent). Call before the server starts."""
    global _applied
    if _applied:
        return
    found = metadata.version("moto")
    if found != MOTO_VERSION:
        raise LocalAWSError(
            f"lambda_ml_layers.local_aws_fixes.resources is written against moto {MOTO_VERSION}, found {found}. "
            f"Fix: install moto=={MOTO_VERSION} (requirements/dev.txt), or re-check each patch against the new "
            "moto source and its tests/integration/test_local_aws_resources.py before changing the pin."
        )
    _patch_layer_version()
    _patch_function()
    _patch_version()
    _register_alias()
    _patch_state_machine()
    _patch_unzipped_size_limit()
    _register_alarm()
    _patch_log_group()
    _refresh_model_maps()
    _applied = True


# --- shared helpers -----------------------------------------------------------------------


def _lambda_backend(account_id: str, region_name: str) -> Any:
    from moto.awslambda.models import lambda_backends

    return lambda_backends[account_id][region_name]


def _remember_policies(resource: Any, cloudformation_json: dict[str, Any]) -> None:
    resource._cfn_properties = copy.deepcopy(cloudformation_json.get("Properties", {}))
    resource._cfn_deletion_policy = cloudformation_json.get("DeletionPolicy", "Delete")
    resource._cfn_update_replace_policy = cloudformation_json.get("UpdateReplacePolicy", "Delete")


def _unchanged(resource: Any, cloudformation_json: dict[str, Any]) -> bool:
    """True if the resolved properties are the ones last applied (policies are refreshed)."""
    if bool(getattr(resource, "_cfn_properties", None) == cloudformation_json.get("Properties", {})):
        _remember_policies(resource, cloudformation_json)
        return True
    return False


def _retained_on_delete(resource: Any) -> bool:
    return bool(getattr(resource, "_cfn_deletion_policy", "Delete") == "Retain")


def _retain_replaced(cloudformation_json: dict[str, Any]) -> bool:
    return bool(cloudformation_json.get("UpdateReplacePolicy", "Delete") == "Retain")


def _invalid_parameter(message: str) -> Exception:
    from moto.awslambda.exceptions import InvalidParameterValueException

    return InvalidParameterValueException(message)


def _s3_object(account_id: str, region_name: str, location: dict[str, Any]) -> Any:
    """The S3 object behind Content/Code (S3Bucket, S3Key, S3ObjectVersion), or AWS's error.

    Stock moto turns a missing key into empty code (CodeSha256 "") or an HTML 500
    (`ValueError` with a tuple); AWS rejects the request with InvalidParameterValueException."""
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    backend = s3_backends[account_id][get_partition(region_name)]
    try:
        key = backend.get_object(location["S3Bucket"], location["S3Key"], location.get("S3ObjectVersion"))
    except MissingBucket:
        raise _invalid_parameter(
            "Error occurred while GetObject. S3 Error Code: NoSuchBucket. "
            "S3 Error Message: The specified bucket does not exist"
        ) from None
    if key is None:
        raise _invalid_parameter(
            "Error occurred while GetObject. S3 Error Code: NoSuchKey. "
            "S3 Error Message: The specified key does not exist."
        )
    return key


def _set_code_from_s3_object(resource: Any, key: Any) -> None:
    """CodeSha256 as AWS reports it: base64 of the sha256 of the zip; CodeSize its byte count."""
    from moto.awslambda.models import _s3_content

    resource.code_bytes, resource.code_size, resource.code_sha_256, resource.code_digest = _s3_content(key)


def _patch(target: type, **attributes: Any) -> None:
    """Replace attributes of one of moto's classes in place (its instances see them at once)."""
    for name, value in attributes.items():
        setattr(target, name, value)


def _cfn_tags(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or []}


# --- 1. AWS::Lambda::LayerVersion -----------------------------------------------------------
#
# Stock: `Ref` gives the Python object (no `physical_resource_id`), so a function's Layers hold
# a repr and the next function update crashes in `utils.split_arn` ("'LayerVersion' object has
# no attribute 'replace'", HTTP 500); `cloudformation_name_type` is "LayerVersion", so the
# LayerName property is ignored and the layer is named `<stack>-<logical id>-<random>`;
# CompatibleArchitectures is dropped; there is no update handler (an update stores None for the
# resource) and no delete handler (a removed layer version stays; with Retain that is right by
# accident, without it wrong).
# AWS: `Ref` is the layer version ARN; LayerName names the layer; every property change is a
# replacement (PublishLayerVersion, a new version number); the version is deleted when the
# resource leaves the stack unless DeletionPolicy is Retain (SAM sets it for RetentionPolicy:
# Retain), and a replaced one unless UpdateReplacePolicy is Retain. GetLayerVersion reports
# CodeSha256 as base64(sha256(zip)) and CodeSize as the zip's size.


def _patch_layer_version() -> None:
    from moto.awslambda.models import LayerVersion

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
        content = dict(properties.get("Content") or {})
        key = _s3_object(account_id, region_name, content) if "S3Bucket" in content else None
        spec: dict[str, Any] = {"LayerName": resource_name, "Content": content}
        for name in ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
            if name in properties:
                spec[name] = properties[name]
        layer_version = _lambda_backend(account_id, region_name).publish_layer_version(spec)
        if key is not None:  # the exact object version asked for (stock reads the latest one)
            _set_code_from_s3_object(layer_version, key)
            layer_version._unzipped_size = None
        _remember_policies(layer_version, cloudformation_json)
        return layer_version

    def update(
        cls: Any,
        /,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        # Without a LayerName moto generates a new random name on every call: keep the first one.
        name = cloudformation_json["Properties"].get("LayerName", original_resource.name)
        if name == original_resource.name and _unchanged(original_resource, cloudformation_json):
            return original_resource
        replacement = create(cls, name, cloudformation_json, account_id, region_name)
        if not _retain_replaced(cloudformation_json):
            _delete_layer_version(original_resource, account_id, region_name)
        return replacement

    def delete(self: Any, account_id: str, region_name: str) -> None:
        if not _retained_on_delete(self):
            _delete_layer_version(self, account_id, region_name)

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "LayerVersionArn":
            return self.arn
        raise UnformattedGetAttTemplateException()

    _patch(
        LayerVersion,
        physical_resource_id=property(lambda self: self.arn),
        cloudformation_name_type=staticmethod(lambda: "LayerName"),
        create_from_cloudformation_json=classmethod(create),
        update_from_cloudformation_json=classmethod(update),
        delete=delete,
        has_cfn_attr=classmethod(lambda cls, attr: attr == "LayerVersionArn"),
        get_cfn_attribute=get_cfn_attribute,
    )


def _delete_layer_version(layer_version: Any, account_id: str, region_name: str) -> None:
    from moto.awslambda.exceptions import UnknownLayerException

    with contextlib.suppress(UnknownLayerException):  # already gone: DeleteLayerVersion is idempotent on AWS
        _lambda_backend(account_id, region_name).delete_layer_version(layer_version.name, str(layer_version.version))


# --- 2. AWS::Lambda::Function ---------------------------------------------------------------
#
# Stock create passes only Description, MemorySize, Publish, Timeout, VpcConfig, Environment and
# ReservedConcurrentExecutions: Layers, Architectures, EphemeralStorage, TracingConfig,
# PackageType, ImageConfig, KmsKeyArn and Tags are dropped. Stock update applies only the
# properties present (a removed Layers or Environment stays), re-reads the code even when it did
# not change, misreads an inline ZipFile, and ignores a changed FunctionName. A missing layer
# version raises ResourceNotFoundException "One or more LayerVersion does not exist [...]"; a
# malformed one (a repr) crashes with HTTP 500; a missing S3 key gives empty code.
# AWS: every property is applied on create and update, an absent property is reset to its
# default, a changed FunctionName is a replacement; Layers are checked:
#   - more than 5: InvalidParameterValueException "Cannot reference more than 5 layers."
#   - not an ARN: ValidationException "1 validation error detected: Value '[...]' at 'layers'
#     failed to satisfy constraint: ..."
#   - unknown: InvalidParameterValueException "Layer version <arn> does not exist."
#   - one layer twice: InvalidParameterValueException "Two different versions of the same layer
#     are not allowed to be referenced in the same function. <a> and <b> are versions of the
#     same layer."
# The layer checks are patched into `LambdaFunction._get_layers_data`, so the Lambda API
# (CreateFunction, UpdateFunctionConfiguration) answers the same way.


def _patch_function() -> None:
    from moto.awslambda.models import LambdaFunction

    def layers_data(self: Any, layer_arns: list[Any]) -> list[dict[str, Any]]:
        return _checked_layers(self.account_id, self.region, layer_arns)

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
        spec = _function_spec(cls, resource_name, properties, account_id, region_name)
        backend = _lambda_backend(account_id, region_name)
        function = backend.create_function(spec)
        if "S3ObjectVersion" in spec["Code"]:  # stock reads the latest object version
            _set_code_from_s3_object(function, _s3_object(account_id, region_name, spec["Code"]))
        _remember_policies(function, cloudformation_json)
        return function

    def update(
        cls: Any,
        /,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        # Without a FunctionName moto generates a new random name on every call: keep the first one.
        name = cloudformation_json["Properties"].get("FunctionName", original_resource.function_name)
        if name != original_resource.function_name:
            replacement = create(cls, name, cloudformation_json, account_id, region_name)
            if not _retain_replaced(cloudformation_json):
                _lambda_backend(account_id, region_name).delete_function(original_resource.function_name)
            return replacement
        if _unchanged(original_resource, cloudformation_json):
            return original_resource
        _update_function(cls, original_resource, cloudformation_json, account_id, region_name)
        return original_resource

    original_delete = LambdaFunction.delete

    def delete(self: Any, account_id: str, region_name: str) -> None:
        if not _retained_on_delete(self):
            original_delete(self, account_id, region_name)

    _patch(
        LambdaFunction,
        _get_layers_data=layers_data,
        create_from_cloudformation_json=classmethod(create),
        update_from_cloudformation_json=classmethod(update),
        delete=delete,
    )


def _checked_layers(account_id: str, region_name: str, layer_arns: list[Any]) -> list[dict[str, Any]]:
    from moto.awslambda.exceptions import LambdaClientError

    if len(layer_arns) > MAX_LAYERS:
        raise _invalid_parameter(f"Cannot reference more than {MAX_LAYERS} layers.")
    if not all(isinstance(arn, str) and re.fullmatch(LAYER_ARN_PATTERN, arn) and len(arn) <= 140 for arn in layer_arns):
        shown = "[" + ", ".join(str(arn) for arn in layer_arns) + "]"
        raise LambdaClientError(
            "ValidationException",
            f"1 validation error detected: Value '{shown}' at 'layers' failed to satisfy constraint: "
            "Member must satisfy constraint: [Member must have length less than or equal to 140, "
            "Member must have length greater than or equal to 1, "
            f"Member must satisfy regular expression pattern: {LAYER_ARN_PATTERN}, Member must not be null]",
        )
    backend = _lambda_backend(account_id, region_name)
    seen: dict[str, str] = {}
    data = []
    for arn in layer_arns:
        layer_arn = arn.rsplit(":", 1)[0]
        if layer_arn in seen:
            raise _invalid_parameter(
                "Two different versions of the same layer are not allowed to be referenced in the same function. "
                f"{seen[layer_arn]} and {arn} are versions of the same layer."
            )
        seen[layer_arn] = arn
        layer_version = backend.layers_versions_by_arn(arn)
        # moto looks a version up by layer name only; AWS also needs the region and account to match.
        if layer_version is None or layer_version.arn != arn:
            raise _invalid_parameter(f"Layer version {arn} does not exist.")
        data.append({"Arn": layer_version.arn, "CodeSize": layer_version.code_size})
    return data


def _function_code(cls: Any, code: dict[str, Any], account_id: str, region_name: str) -> tuple[dict[str, Any], Any]:
    """A fresh Code dict for moto (an inline ZipFile made into a zip, as stock create does) and
    the S3 object behind it, checked (None for inline code or an image)."""
    code = dict(code)
    if "ZipFile" in code:
        code["ZipFile"] = base64.b64encode(cls._create_zipfile_from_plaintext_code(code["ZipFile"]))
        return code, None
    if "S3Bucket" in code:
        return code, _s3_object(account_id, region_name, code)
    return code, None


def _function_spec(
    cls: Any, function_name: str, properties: dict[str, Any], account_id: str, region_name: str
) -> dict[str, Any]:
    code, _key = _function_code(cls, properties["Code"], account_id, region_name)
    spec: dict[str, Any] = {
        "Code": code,
        "FunctionName": function_name,
        "Handler": properties.get("Handler"),
        "Role": properties["Role"],
        "Runtime": properties.get("Runtime"),
    }
    for name in (
        "Description",
        "MemorySize",
        "Timeout",
        "VpcConfig",
        "Environment",
        "ReservedConcurrentExecutions",
        "Layers",
        "Architectures",
        "EphemeralStorage",
        "TracingConfig",
        "PackageType",
        "ImageConfig",
    ):
        if name in properties:
            spec[name] = properties[name]
    if "KmsKeyArn" in properties:
        spec["KMSKeyArn"] = properties["KmsKeyArn"]
    if "Tags" in properties:
        spec["Tags"] = _cfn_tags(properties["Tags"])
    return spec


def _update_function(
    cls: Any, function: Any, cloudformation_json: dict[str, Any], account_id: str, region_name: str
) -> None:
    """Apply the whole new configuration (absent properties back to their defaults), and the
    code only if it changed. Everything is checked before anything changes."""
    from moto.awslambda.models import ImageConfig
    from moto.core.utils import iso_8601_datetime_with_nanoseconds

    properties = cloudformation_json["Properties"]
    previous = getattr(function, "_cfn_properties", {})
    layers = _checked_layers(account_id, region_name, list(properties.get("Layers", [])))
    code_changed = properties["Code"] != previous.get("Code")
    code, key = _function_code(cls, properties["Code"], account_id, region_name) if code_changed else ({}, None)
    if not code_changed:
        new_code_bytes = getattr(function, "code_bytes", b"")
    elif key is not None:
        new_code_bytes = key.value
    else:
        new_code_bytes = base64.b64decode(code["ZipFile"]) if "ZipFile" in code else b""
    _check_unzipped_size(account_id, region_name, new_code_bytes, layers)

    function.update_configuration(
        {
            "Description": properties.get("Description", ""),
            "Handler": properties.get("Handler"),
            "MemorySize": properties.get("MemorySize", 128),
            "Role": properties["Role"],
            "Runtime": properties.get("Runtime"),
            "Timeout": properties.get("Timeout", 3),
            "VpcConfig": properties.get("VpcConfig"),
        }
    )
    function.environment_vars = dict((properties.get("Environment") or {}).get("Variables", {}))
    function.layers = layers
    function.architectures = properties.get("Architectures", ["x86_64"])
    function.ephemeral_storage = (properties.get("EphemeralStorage") or {}).get("Size", 512)
    function.tracing_config = properties.get("TracingConfig") or {"Mode": "PassThrough"}
    function.image_config = ImageConfig(properties.get("ImageConfig", {}))
    function.kms_key_arn = properties.get("KmsKeyArn")
    function.reserved_concurrency = properties.get("ReservedConcurrentExecutions")
    function.tags = _cfn_tags(properties.get("Tags"))
    if code_changed:
        # Published versions share the Code dict with $LATEST (a shallow copy): give $LATEST its own.
        function.code = dict(function.code)
        function.update_function_code(code)
        if key is not None:
            _set_code_from_s3_object(function, key)
    function.code_or_config_updated = True
    function.last_modified = iso_8601_datetime_with_nanoseconds()
    _remember_policies(function, cloudformation_json)


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


def _patch_version() -> None:
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
        backend = _lambda_backend(account_id, region_name)
        function = backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(properties["FunctionName"])
        function = _sync_function_with_stack(function, kwargs.get("StackId"), account_id, region_name)
        expected_sha = properties.get("CodeSha256")
        if expected_sha is not None and expected_sha != function.code_sha_256:
            raise _invalid_parameter(
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
        _remember_policies(resource, cloudformation_json)
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
        if _unchanged(original_resource, cloudformation_json):
            return original_resource
        replacement = create(cls, new_resource_name, cloudformation_json, account_id, region_name)
        if not _retain_replaced(cloudformation_json):
            _delete_function_version(original_resource, account_id, region_name)
        return replacement

    def delete(self: Any, account_id: str, region_name: str) -> None:
        if not _retained_on_delete(self):
            _delete_function_version(self, account_id, region_name)

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Version":
            return str(self.version)
        if attribute_name == "FunctionArn":
            return self.arn
        raise UnformattedGetAttTemplateException()

    _patch(
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
        _lambda_backend(account_id, region_name).delete_function(resource.function_name, str(resource.version))


# --- 4. AWS::Lambda::Alias ------------------------------------------------------------------
#
# Stock: no model for the type, so the resource is skipped with a warning and the stack still
# succeeds: SAM's AutoPublishAlias `live` alias never exists, and `Ref` to it (the state
# machine's DefinitionSubstitutions, Outputs) is empty.
# AWS: creates the alias (Name, FunctionName, FunctionVersion, Description, RoutingConfig with
# AdditionalVersionWeights [{FunctionVersion, FunctionWeight}]); `Ref` is the alias ARN; an
# update to FunctionVersion, Description or RoutingConfig moves the alias in place; a new Name
# or FunctionName is a replacement; deletion removes the alias.
# Patch: a new CloudFormationModel subclass (created at apply(), so importing this module does
# not register it) over moto's own alias storage, then moto's cached model maps are refreshed.


def _register_alias() -> None:
    from moto.awslambda.exceptions import UnknownFunctionException
    from moto.core.common_models import CloudFormationModel

    class LambdaAliasResource(CloudFormationModel):
        """An `AWS::Lambda::Alias` of a CloudFormation stack, kept in moto's Lambda backend."""

        def __init__(self, alias: Any, function_name: str, account_id: str, region_name: str) -> None:
            self.alias = alias
            self.function_name = function_name
            self.account_id = account_id
            self.region_name = region_name

        @property
        def physical_resource_id(self) -> str:
            return str(self.alias.arn)

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Lambda::Alias"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return False

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> LambdaAliasResource:
            properties = cloudformation_json["Properties"]
            backend = _lambda_backend(account_id, region_name)
            function = backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(properties["FunctionName"])
            alias = backend.create_alias(
                name=properties.get("Name", resource_name),
                function_name=function.function_name,
                function_version=str(properties["FunctionVersion"]),
                description=properties.get("Description", ""),
                routing_config=_routing_config(properties.get("RoutingConfig")),
            )
            resource = cls(alias, function.function_name, account_id, region_name)
            _remember_policies(resource, cloudformation_json)
            return resource

        @classmethod
        def update_from_cloudformation_json(
            cls,
            original_resource: LambdaAliasResource,
            new_resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> LambdaAliasResource:
            if _unchanged(original_resource, cloudformation_json):
                return original_resource
            properties = cloudformation_json["Properties"]
            backend = _lambda_backend(account_id, region_name)
            function = backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(properties["FunctionName"])
            name = properties.get("Name", new_resource_name)
            if name != original_resource.alias.name or function.function_name != original_resource.function_name:
                replacement = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
                if not _retain_replaced(cloudformation_json):
                    original_resource.delete(account_id, region_name, force=True)
                return replacement
            backend.update_alias(
                name=name,
                function_name=function.function_name,
                function_version=str(properties["FunctionVersion"]),
                description=properties.get("Description", ""),
                routing_config=_routing_config(properties.get("RoutingConfig")),
            )
            _remember_policies(original_resource, cloudformation_json)
            return original_resource

        def delete(self, account_id: str, region_name: str, force: bool = False) -> None:
            if _retained_on_delete(self) and not force:
                return
            with contextlib.suppress(UnknownFunctionException):  # the function, and its aliases, is gone already
                _lambda_backend(account_id, region_name).delete_alias(self.alias.name, self.function_name)

    global _alias_resource_class
    _alias_resource_class = LambdaAliasResource


_alias_resource_class: type | None = None


def _routing_config(routing: dict[str, Any] | None) -> dict[str, Any]:
    """CloudFormation's [{FunctionVersion, FunctionWeight}] as the Lambda API's {version: weight}."""
    weights = (routing or {}).get("AdditionalVersionWeights") or []
    if not weights:
        return {}
    return {
        "AdditionalVersionWeights": {
            str(weight["FunctionVersion"]): float(weight["FunctionWeight"]) for weight in weights
        }
    }


# --- 5. AWS::StepFunctions::StateMachine ----------------------------------------------------
#
# Stock: DefinitionSubstitutions are ignored (the deployed definition keeps `${DataValidationArn}`
# placeholders), `Definition` (an object) and DefinitionS3Location are ignored (empty
# definition), StateMachineType is ignored, `GetAtt Arn` is refused ("Template error: resource
# ... does not support attribute type Arn"), and a removed Retain resource is deleted.
# AWS: the definition is DefinitionString, Definition (as JSON) or the S3 object, with every
# `${key}` of DefinitionSubstitutions replaced by its value; `Ref` and `GetAtt Arn` are the ARN,
# `GetAtt Name` the name; an update changes the definition and role in place; a new name or type
# is a replacement.


def _patch_state_machine() -> None:
    from moto.stepfunctions.models import StateMachine, stepfunctions_backends
    from moto.stepfunctions.utils import cfn_to_api_tags

    original_get_cfn_attribute = StateMachine.get_cfn_attribute

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
        backend = stepfunctions_backends[account_id][region_name]
        state_machine = backend.create_state_machine(
            properties.get("StateMachineName", resource_name),
            _state_machine_definition(properties, account_id, region_name),
            properties.get("RoleArn", ""),
            tags=cfn_to_api_tags(properties.get("Tags", [])),
            sm_type=properties.get("StateMachineType"),
        )
        _remember_policies(state_machine, cloudformation_json)
        return state_machine

    def update(
        cls: Any,
        /,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        if _unchanged(original_resource, cloudformation_json):
            return original_resource
        properties = cloudformation_json["Properties"]
        backend = stepfunctions_backends[account_id][region_name]
        name = properties.get("StateMachineName", original_resource.name)
        if name != original_resource.name or properties.get("StateMachineType", "STANDARD") != original_resource.type:
            replacement = create(cls, name, cloudformation_json, account_id, region_name)
            if not _retain_replaced(cloudformation_json):
                backend.delete_state_machine(original_resource.arn)
            return replacement
        state_machine = backend.update_state_machine(
            original_resource.arn,
            definition=_state_machine_definition(properties, account_id, region_name),
            role_arn=properties.get("RoleArn", ""),
        )
        backend.tagger.tag_resource(state_machine.arn, cfn_to_api_tags(properties.get("Tags", [])))
        _remember_policies(state_machine, cloudformation_json)
        return state_machine

    def delete(self: Any, account_id: str, region_name: str) -> None:
        if not _retained_on_delete(self):
            stepfunctions_backends[account_id][region_name].delete_state_machine(self.arn)

    def has_cfn_attr(cls: Any, attr: str) -> bool:
        return attr in ("Arn", "Name", "DefinitionString", "RoleArn", "StateMachineName", "Tags")

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        if attribute_name == "Arn":
            return self.arn
        return original_get_cfn_attribute(self, attribute_name)

    _patch(
        StateMachine,
        create_from_cloudformation_json=classmethod(create),
        update_from_cloudformation_json=classmethod(update),
        delete=delete,
        has_cfn_attr=classmethod(has_cfn_attr),
        get_cfn_attribute=get_cfn_attribute,
    )


def _state_machine_definition(properties: dict[str, Any], account_id: str, region_name: str) -> str:
    if "DefinitionString" in properties:
        definition = str(properties["DefinitionString"])
    elif "Definition" in properties:
        definition = json.dumps(properties["Definition"], indent=4)
    elif "DefinitionS3Location" in properties:
        location = properties["DefinitionS3Location"]
        key = _s3_object(
            account_id,
            region_name,
            {"S3Bucket": location["Bucket"], "S3Key": location["Key"], "S3ObjectVersion": location.get("Version")},
        )
        definition = key.value.decode("utf-8")
    else:
        definition = ""
    for key_name, value in (properties.get("DefinitionSubstitutions") or {}).items():
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        definition = definition.replace("${" + key_name + "}", text)
    return definition


# --- 7. Lambda's unzipped size limit -------------------------------------------------------------
#
# Stock: any size is accepted, so a deploy that AWS refuses succeeds locally.
# AWS (DESIGN.md section 2): a function's code plus all its layers must unzip to at most
# 262,144,000 bytes. PublishLayerVersion of a bigger layer: "Unzipped size must be smaller than
# 262144000 bytes". A function whose layers already take it all: "Layers consume more than the
# available size of 262144000 bytes"; else, code bigger than the room the layers leave:
# "Unzipped size must be smaller than N bytes", N = 262144000 - the layers' unzipped size. All are
# InvalidParameterValueException, from the Lambda API and from CloudFormation alike.
# Patch: checked where moto stores a layer version or a function (every create, API or stack),
# after UpdateFunctionConfiguration and UpdateFunctionCode (undone if over), and before a stack
# update changes a function (`_update_function`). Unzipped size = the sum of the zip's entries.


def _unzipped_size(data: bytes) -> int:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        return len(data)


def _layer_unzipped_size(layer_version: Any) -> int:
    size = getattr(layer_version, "_unzipped_size", None)
    if size is None:
        size = _unzipped_size(layer_version.code_bytes)
        layer_version._unzipped_size = size
    return int(size)


def _check_unzipped_size(account_id: str, region_name: str, code_bytes: bytes, layers: list[Any]) -> None:
    backend = _lambda_backend(account_id, region_name)
    layer_versions = [backend.layers_versions_by_arn(entry["Arn"]) for entry in layers]
    layer_bytes = sum(_layer_unzipped_size(lv) for lv in layer_versions if lv is not None)
    if layer_bytes > UNZIPPED_LIMIT:
        raise _invalid_parameter(f"Layers consume more than the available size of {UNZIPPED_LIMIT} bytes")
    room = UNZIPPED_LIMIT - layer_bytes
    if _unzipped_size(code_bytes) > room:
        raise _invalid_parameter(f"Unzipped size must be smaller than {room} bytes")


def _check_function_size(function: Any) -> None:
    _check_unzipped_size(function.account_id, function.region, getattr(function, "code_bytes", b""), function.layers)


_CODE_STATE = ("code", "code_bytes", "code_size", "code_sha_256", "code_digest", "layers")


def _patch_unzipped_size_limit() -> None:
    from moto.awslambda.models import LambdaFunction, LambdaStorage, LayerStorage

    put_layer_version = LayerStorage.put_layer_version
    put_function = LambdaStorage.put_function
    update_configuration = LambdaFunction.update_configuration
    update_function_code = LambdaFunction.update_function_code

    def checked_put_layer_version(self: Any, layer_version: Any) -> None:
        if _layer_unzipped_size(layer_version) > UNZIPPED_LIMIT:
            raise _invalid_parameter(f"Unzipped size must be smaller than {UNZIPPED_LIMIT} bytes")
        put_layer_version(self, layer_version)

    def checked_put_function(self: Any, function: Any) -> None:
        _check_function_size(function)
        put_function(self, function)

    def undone_if_over(original: Any) -> Any:
        def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
            saved = {name: getattr(self, name) for name in _CODE_STATE if hasattr(self, name)}
            saved["code"] = dict(saved.get("code") or {})  # moto edits this dict in place
            result = original(self, *args, **kwargs)
            try:
                _check_function_size(self)
            except Exception:
                for name, value in saved.items():
                    setattr(self, name, value)
                raise
            return result

        return checked

    _patch(LayerStorage, put_layer_version=checked_put_layer_version)
    _patch(LambdaStorage, put_function=checked_put_function)
    _patch(
        LambdaFunction,
        update_configuration=undone_if_over(update_configuration),
        update_function_code=undone_if_over(update_function_code),
    )


# --- 8. AWS::CloudWatch::Alarm ----------------------------------------------------------------
#
# Stock: no model for the type: skipped with a warning, the stack still succeeds, and no alarm
# exists (DescribeAlarms is empty, SetAlarmState fails), so nothing that watches the pipeline's
# alarms after a deploy can be rehearsed.
# AWS: PutMetricAlarm with the properties; `Ref` is the alarm name (AlarmName, else generated
# `<stack>-<logical id>-<random>`), `GetAtt Arn` its ARN; an update rewrites the alarm in place
# (its state is kept), a new AlarmName is a replacement; deletion deletes the alarm.
# Patch: a new CloudFormationModel subclass over moto's CloudWatch backend (single-metric alarms:
# Namespace, MetricName, Dimensions, Statistic or ExtendedStatistic, ...; `Metrics` math alarms
# are stored without their queries).


def _register_alarm() -> None:
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.common_models import CloudFormationModel

    def put_alarm(name: str, properties: Any, account_id: str, region_name: str) -> Any:
        def number(key: str) -> Any:
            value = properties.get(key)
            return None if value is None else float(value) if key == "Threshold" else int(value)

        return cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=name,
            namespace=properties.get("Namespace"),
            metric_name=properties.get("MetricName"),
            comparison_operator=properties["ComparisonOperator"],
            evaluation_periods=number("EvaluationPeriods"),
            datapoints_to_alarm=number("DatapointsToAlarm"),
            period=number("Period"),
            threshold=number("Threshold"),
            statistic=properties.get("Statistic"),
            extended_statistic=properties.get("ExtendedStatistic"),
            description=properties.get("AlarmDescription"),
            dimensions=list(properties.get("Dimensions") or []),
            alarm_actions=list(properties.get("AlarmActions") or []),
            ok_actions=list(properties.get("OKActions") or []),
            insufficient_data_actions=list(properties.get("InsufficientDataActions") or []),
            unit=properties.get("Unit"),
            actions_enabled=bool(properties.get("ActionsEnabled", True)),
            treat_missing_data=properties.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=properties.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=properties.get("ThresholdMetricId"),
            tags=list(properties.get("Tags") or []),
        )

    class CloudWatchAlarmResource(CloudFormationModel):
        """An `AWS::CloudWatch::Alarm` of a CloudFormation stack, kept in moto's CloudWatch backend."""

        def __init__(self, alarm: Any) -> None:
            self.alarm = alarm

        @property
        def physical_resource_id(self) -> str:
            return str(self.alarm.name)

        @staticmethod
        def cloudformation_name_type() -> str:
            return "AlarmName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudWatch::Alarm"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> Any:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            if attribute_name == "Arn":
                return self.alarm.alarm_arn
            raise UnformattedGetAttTemplateException()

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> CloudWatchAlarmResource:
            alarm = put_alarm(resource_name, cloudformation_json["Properties"], account_id, region_name)
            resource = cls(alarm)
            _remember_policies(resource, cloudformation_json)
            return resource

        @classmethod
        def update_from_cloudformation_json(
            cls,
            original_resource: CloudWatchAlarmResource,
            new_resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> CloudWatchAlarmResource:
            properties = cloudformation_json["Properties"]
            old = original_resource.alarm
            # Without an AlarmName moto generates a new random name on every call: keep the first one.
            name = properties.get("AlarmName", old.name)
            if name != old.name:
                replacement = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
                if not _retain_replaced(cloudformation_json):
                    cloudwatch_backends[account_id][region_name].delete_alarms([old.name])
                return replacement
            if _unchanged(original_resource, cloudformation_json):
                return original_resource
            alarm = put_alarm(name, properties, account_id, region_name)
            alarm.update_state(old.state_reason, old.state_reason_data, old.state_value)
            alarm.state_updated_timestamp = old.state_updated_timestamp
            original_resource.alarm = alarm
            _remember_policies(original_resource, cloudformation_json)
            return original_resource

        def delete(self, account_id: str, region_name: str) -> None:
            if not _retained_on_delete(self):
                cloudwatch_backends[account_id][region_name].delete_alarms([self.alarm.name])

    global _alarm_resource_class
    _alarm_resource_class = CloudWatchAlarmResource


_alarm_resource_class: type | None = None


# --- 9. AWS::Logs::LogGroup updates --------------------------------------------------------------
#
# Stock: LogGroup has no update handler: a changed RetentionInDays is never applied (stock
# ResourceMap.update then even forgets the log group, so a later stack delete leaves it behind).
# AWS: RetentionInDays is updated in place (removing it means "never expire"); a new
# LogGroupName is a replacement.


def _patch_log_group() -> None:
    from moto.logs.models import LogGroup, logs_backends

    def update(
        cls: Any,
        /,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        properties = cloudformation_json["Properties"]
        backend = logs_backends[account_id][region_name]
        name = properties.get("LogGroupName", original_resource.name)
        if name != original_resource.name:
            replacement = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
            if not _retain_replaced(cloudformation_json):
                backend.delete_log_group(original_resource.name)
            return replacement
        retention = properties.get("RetentionInDays")
        if retention is None:
            backend.delete_retention_policy(name)
        else:
            days: Any = int(retention)  # moto's hint says str; the API (and describe) use a number
            backend.put_retention_policy(name, days)
        return original_resource

    _patch(LogGroup, update_from_cloudformation_json=classmethod(update))


# --- moto's cached model maps -----------------------------------------------------------------


def _refresh_model_maps() -> None:
    """`get_model_list`, `get_model_map` and `get_name_type_map` are lru_cached: forget them so the
    new alias model and LayerVersion's LayerName are seen even if a stack was parsed already."""
    from moto.cloudformation import parsing

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
