"""Patch 1: AWS::Lambda::LayerVersion as CloudFormation makes it on AWS."""

from __future__ import annotations

import contextlib
from typing import Any

from .model_helpers import (
    lambda_backend,
    patch_class,
    remember_policies,
    retain_replaced,
    retained_on_delete,
    s3_object,
    set_code_from_s3_object,
    unchanged,
)

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


def patch_layer_version() -> None:
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
        key = s3_object(account_id, region_name, content) if "S3Bucket" in content else None
        spec: dict[str, Any] = {"LayerName": resource_name, "Content": content}
        for name in ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
            if name in properties:
                spec[name] = properties[name]
        layer_version = lambda_backend(account_id, region_name).publish_layer_version(spec)
        if key is not None:  # the exact object version asked for (stock reads the latest one)
            set_code_from_s3_object(layer_version, key)
            layer_version._unzipped_size = None
        remember_policies(layer_version, cloudformation_json)
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
        if name == original_resource.name and unchanged(original_resource, cloudformation_json):
            return original_resource
        replacement = create(cls, name, cloudformation_json, account_id, region_name)
        if not retain_replaced(cloudformation_json):
            _delete_layer_version(original_resource, account_id, region_name)
        return replacement

    def delete(self: Any, account_id: str, region_name: str) -> None:
        if not retained_on_delete(self):
            _delete_layer_version(self, account_id, region_name)

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "LayerVersionArn":
            return self.arn
        raise UnformattedGetAttTemplateException()

    patch_class(
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
        lambda_backend(account_id, region_name).delete_layer_version(layer_version.name, str(layer_version.version))
