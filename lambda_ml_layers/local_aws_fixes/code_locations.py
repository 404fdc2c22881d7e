"""Deployed code can be downloaded, as from AWS.

On AWS, GetFunction's `Code.Location` and GetLayerVersion's `Content.Location` are presigned
HTTPS URLs that return the zip. Stock moto 5.2.5 answers a made-up amazonaws.com host for
functions and `s3://` for layers, so nothing that reads back what was deployed (the deploy's
smoke run in the sandbox) can fetch it. Here the bytes moto keeps are put into moto's own S3
(bucket `awslambda-<region>-tasks`, key by content sha256) and the location is that object's
path-style URL on this server, which readable without signing
(AWS presigns it; here the object is public-read in the emulator only).
"""

from __future__ import annotations

import hashlib
from typing import Any

from moto.awslambda import models as lambda_models
from moto.s3.exceptions import MissingBucket
from moto.s3.models import get_canned_acl, s3_backends

_applied = False


def _server_url() -> str:
    from flask import has_request_context, request

    return str(request.host_url) if has_request_context() else "http://localhost/"


def download_url(account_id: str, region: str, code: bytes) -> str:
    """A URL on this server that returns `code` (stored once per content)."""
    backend = s3_backends[account_id]["aws"]
    bucket = f"awslambda-{region}-tasks"
    try:
        backend.get_bucket(bucket)
    except MissingBucket:
        backend.create_bucket(bucket, region)
    key = f"snapshots/{hashlib.sha256(code).hexdigest()}.zip"
    if key not in backend.get_bucket(bucket).keys:
        stored = backend.put_object(bucket, key, code, disable_notification=True)
        # moto refuses unsigned reads of private objects; AWS's URL is presigned instead.
        stored.acl = get_canned_acl("public-read")
    return f"{_server_url()}{bucket}/{key}"


def apply() -> None:
    global _applied
    if _applied:
        return
    function_get_code = lambda_models.LambdaFunction.get_code
    layer_get_version = lambda_models.LayerVersion.get_layer_version

    def get_code(self: Any) -> dict[str, Any]:
        response: dict[str, Any] = function_get_code(self)
        if response.get("Code", {}).get("RepositoryType") == "S3" and getattr(self, "code_bytes", b""):
            response["Code"]["Location"] = download_url(self.account_id, self.region, self.code_bytes)
        return response

    def get_layer_version(self: Any) -> dict[str, Any]:
        response: dict[str, Any] = layer_get_version(self)
        if getattr(self, "code_bytes", b""):
            response["Content"]["Location"] = download_url(self.account_id, self.region, self.code_bytes)
        return response

    lambda_models.LambdaFunction.get_code = get_code  # type: ignore[method-assign]
    lambda_models.LayerVersion.get_layer_version = get_layer_version  # type: ignore[method-assign]
    _applied = True
