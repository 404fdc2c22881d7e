"""Published layer versions: which one holds a zip's exact bytes, and does a recorded one still exist."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]


def code_sha256(zip_path: Path) -> str:
    """Lambda's CodeSha256 of a zip: base64 of its sha256."""
    digest = hashlib.sha256()
    with zip_path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def matching_version(lambda_client: Any, layer_name: str, sha: str) -> str | None:
    """The newest version of `layer_name` whose content has CodeSha256 `sha`, as an ARN.

    PublishLayerVersion always makes a new version, even for identical bytes; asking first is
    the only way to publish a layer once.
    """
    versions: list[dict[str, Any]] = []
    try:
        for page in lambda_client.get_paginator("list_layer_versions").paginate(LayerName=layer_name):
            versions.extend(page.get("LayerVersions", []))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    for version in sorted(versions, key=lambda v: int(v["Version"]), reverse=True):
        details = lambda_client.get_layer_version(LayerName=layer_name, VersionNumber=int(version["Version"]))
        if details.get("Content", {}).get("CodeSha256") == sha:
            return str(details["LayerVersionArn"])
    return None


def split_layer_arn(arn: str) -> tuple[str, int]:
    """arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION -> (the layer's ARN, VERSION)."""
    layer, _, version = arn.rpartition(":")
    return layer, int(version)


def get_version(lambda_client: Any, arn: str) -> dict[str, Any]:
    layer, version = split_layer_arn(arn)
    response: dict[str, Any] = lambda_client.get_layer_version(LayerName=layer, VersionNumber=version)
    return response


def missing_versions(lambda_client: Any, arns: list[str]) -> list[str]:
    """The ARNs among `arns` that no longer exist (deleted or pruned)."""
    missing = []
    for arn in arns:
        try:
            get_version(lambda_client, arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ResourceNotFoundException", "404"):
                missing.append(arn)
            else:
                raise
    return missing
