"""Helpers every patched resource model shares: policies, no-op updates, S3 code, AWS's errors."""

from __future__ import annotations

import copy
from typing import Any


def lambda_backend(account_id: str, region_name: str) -> Any:
    from moto.awslambda.models import lambda_backends

    return lambda_backends[account_id][region_name]


def remember_policies(resource: Any, cloudformation_json: dict[str, Any]) -> None:
    resource._cfn_properties = copy.deepcopy(cloudformation_json.get("Properties", {}))
    resource._cfn_deletion_policy = cloudformation_json.get("DeletionPolicy", "Delete")
    resource._cfn_update_replace_policy = cloudformation_json.get("UpdateReplacePolicy", "Delete")


def unchanged(resource: Any, cloudformation_json: dict[str, Any]) -> bool:
    """True if the resolved properties are the ones last applied (policies are refreshed)."""
    if bool(getattr(resource, "_cfn_properties", None) == cloudformation_json.get("Properties", {})):
        remember_policies(resource, cloudformation_json)
        return True
    return False


def retained_on_delete(resource: Any) -> bool:
    return bool(getattr(resource, "_cfn_deletion_policy", "Delete") == "Retain")


def retain_replaced(cloudformation_json: dict[str, Any]) -> bool:
    return bool(cloudformation_json.get("UpdateReplacePolicy", "Delete") == "Retain")


def invalid_parameter(message: str) -> Exception:
    from moto.awslambda.exceptions import InvalidParameterValueException

    return InvalidParameterValueException(message)


def s3_object(account_id: str, region_name: str, location: dict[str, Any]) -> Any:
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
        raise invalid_parameter(
            "Error occurred while GetObject. S3 Error Code: NoSuchBucket. "
            "S3 Error Message: The specified bucket does not exist"
        ) from None
    if key is None:
        raise invalid_parameter(
            "Error occurred while GetObject. S3 Error Code: NoSuchKey. "
            "S3 Error Message: The specified key does not exist."
        )
    return key


def set_code_from_s3_object(resource: Any, key: Any) -> None:
    """CodeSha256 as AWS reports it: base64 of the sha256 of the zip; CodeSize its byte count."""
    from moto.awslambda.models import _s3_content

    resource.code_bytes, resource.code_size, resource.code_sha_256, resource.code_digest = _s3_content(key)


def patch_class(target: type, **attributes: Any) -> None:
    """Replace attributes of one of moto's classes in place (its instances see them at once)."""
    for name, value in attributes.items():
        setattr(target, name, value)


def cfn_tags(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or []}
