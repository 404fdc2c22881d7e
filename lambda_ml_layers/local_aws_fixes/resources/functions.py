"""Patch 2: AWS::Lambda::Function with every property, and Lambda's checks of its Layers."""

from __future__ import annotations

import base64
import re
from typing import Any

from .model_helpers import (
    cfn_tags,
    invalid_parameter,
    lambda_backend,
    patch_class,
    remember_policies,
    retain_replaced,
    retained_on_delete,
    s3_object,
    set_code_from_s3_object,
    unchanged,
)
from .size_limit import check_unzipped_size

MAX_LAYERS = 5


# AWS's own pattern for an entry of a function's Layers (from its ValidationException).
LAYER_ARN_PATTERN = (
    r"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)"
    r"|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)


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


def patch_function() -> None:
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
        backend = lambda_backend(account_id, region_name)
        function = backend.create_function(spec)
        if "S3ObjectVersion" in spec["Code"]:  # stock reads the latest object version
            set_code_from_s3_object(function, s3_object(account_id, region_name, spec["Code"]))
        remember_policies(function, cloudformation_json)
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
            if not retain_replaced(cloudformation_json):
                lambda_backend(account_id, region_name).delete_function(original_resource.function_name)
            return replacement
        if unchanged(original_resource, cloudformation_json):
            return original_resource
        _update_function(cls, original_resource, cloudformation_json, account_id, region_name)
        return original_resource

    original_delete = LambdaFunction.delete

    def delete(self: Any, account_id: str, region_name: str) -> None:
        if not retained_on_delete(self):
            original_delete(self, account_id, region_name)

    patch_class(
        LambdaFunction,
        _get_layers_data=layers_data,
        create_from_cloudformation_json=classmethod(create),
        update_from_cloudformation_json=classmethod(update),
        delete=delete,
    )


def _checked_layers(account_id: str, region_name: str, layer_arns: list[Any]) -> list[dict[str, Any]]:
    from moto.awslambda.exceptions import LambdaClientError

    if len(layer_arns) > MAX_LAYERS:
        raise invalid_parameter(f"Cannot reference more than {MAX_LAYERS} layers.")
    if not all(isinstance(arn, str) and re.fullmatch(LAYER_ARN_PATTERN, arn) and len(arn) <= 140 for arn in layer_arns):
        shown = "[" + ", ".join(str(arn) for arn in layer_arns) + "]"
        raise LambdaClientError(
            "ValidationException",
            f"1 validation error detected: Value '{shown}' at 'layers' failed to satisfy constraint: "
            "Member must satisfy constraint: [Member must have length less than or equal to 140, "
            "Member must have length greater than or equal to 1, "
            f"Member must satisfy regular expression pattern: {LAYER_ARN_PATTERN}, Member must not be null]",
        )
    backend = lambda_backend(account_id, region_name)
    seen: dict[str, str] = {}
    data = []
    for arn in layer_arns:
        layer_arn = arn.rsplit(":", 1)[0]
        if layer_arn in seen:
            raise invalid_parameter(
                "Two different versions of the same layer are not allowed to be referenced in the same function. "
                f"{seen[layer_arn]} and {arn} are versions of the same layer."
            )
        seen[layer_arn] = arn
        layer_version = backend.layers_versions_by_arn(arn)
        # moto looks a version up by layer name only; AWS also needs the region and account to match.
        if layer_version is None or layer_version.arn != arn:
            raise invalid_parameter(f"Layer version {arn} does not exist.")
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
        return code, s3_object(account_id, region_name, code)
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
        spec["Tags"] = cfn_tags(properties["Tags"])
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
    check_unzipped_size(account_id, region_name, new_code_bytes, layers)

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
    function.tags = cfn_tags(properties.get("Tags"))
    if code_changed:
        # Published versions share the Code dict with $LATEST (a shallow copy): give $LATEST its own.
        function.code = dict(function.code)
        function.update_function_code(code)
        if key is not None:
            set_code_from_s3_object(function, key)
    function.code_or_config_updated = True
    function.last_modified = iso_8601_datetime_with_nanoseconds()
    remember_policies(function, cloudformation_json)
