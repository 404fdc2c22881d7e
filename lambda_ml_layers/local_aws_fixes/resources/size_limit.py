"""Patch 7: Lambda's unzipped size limit for layers and for a function with its layers."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from .model_helpers import invalid_parameter, lambda_backend, patch_class

UNZIPPED_LIMIT = 262_144_000  # bytes: a function's code plus all its layers, unzipped


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


def check_unzipped_size(account_id: str, region_name: str, code_bytes: bytes, layers: list[Any]) -> None:
    backend = lambda_backend(account_id, region_name)
    layer_versions = [backend.layers_versions_by_arn(entry["Arn"]) for entry in layers]
    layer_bytes = sum(_layer_unzipped_size(lv) for lv in layer_versions if lv is not None)
    if layer_bytes > UNZIPPED_LIMIT:
        raise invalid_parameter(f"Layers consume more than the available size of {UNZIPPED_LIMIT} bytes")
    room = UNZIPPED_LIMIT - layer_bytes
    if _unzipped_size(code_bytes) > room:
        raise invalid_parameter(f"Unzipped size must be smaller than {room} bytes")


def _check_function_size(function: Any) -> None:
    check_unzipped_size(function.account_id, function.region, getattr(function, "code_bytes", b""), function.layers)


_CODE_STATE = ("code", "code_bytes", "code_size", "code_sha_256", "code_digest", "layers")


def patch_unzipped_size_limit() -> None:
    from moto.awslambda.models import LambdaFunction, LambdaStorage, LayerStorage

    put_layer_version = LayerStorage.put_layer_version
    put_function = LambdaStorage.put_function
    update_configuration = LambdaFunction.update_configuration
    update_function_code = LambdaFunction.update_function_code

    def checked_put_layer_version(self: Any, layer_version: Any) -> None:
        if _layer_unzipped_size(layer_version) > UNZIPPED_LIMIT:
            raise invalid_parameter(f"Unzipped size must be smaller than {UNZIPPED_LIMIT} bytes")
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

    patch_class(LayerStorage, put_layer_version=checked_put_layer_version)
    patch_class(LambdaStorage, put_function=checked_put_function)
    patch_class(
        LambdaFunction,
        update_configuration=undone_if_over(update_configuration),
        update_function_code=undone_if_over(update_function_code),
    )
