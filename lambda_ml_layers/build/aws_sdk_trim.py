"""Keep only the AWS services the pipeline uses in botocore's and boto3's data folders."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..core.errors import ConfigError
from ..core.layer_tree import StepResult, tree_size

SDK_DATA_DIRS = ("botocore/data", "boto3/data")


def services_to_remove(available: list[str], keep: tuple[str, ...]) -> list[str]:
    """The service folders to delete; an unknown kept service is a config error, not a silent no-op."""
    unknown = sorted(set(keep) - set(available))
    if unknown:
        raise ConfigError(
            f"[aws_sdk] keep_services names {', '.join(unknown)}, which botocore does not know. "
            f"Use botocore's service names (the folder names in botocore/data), e.g. 's3', 'stepfunctions'."
        )
    return sorted(set(available) - set(keep))


def trim_aws_sdk(site: Path, keep: tuple[str, ...] | None) -> StepResult:
    if keep is None:
        return StepResult("aws-sdk-data")
    botocore_data = site / SDK_DATA_DIRS[0]
    if not botocore_data.is_dir():
        raise ConfigError("[aws_sdk] keep_services is set but the layer has no botocore/data to trim.")
    available = sorted(p.name for p in botocore_data.iterdir() if p.is_dir())
    remove = services_to_remove(available, keep)
    files = 0
    freed = 0
    for data_dir in SDK_DATA_DIRS:
        for service in remove:
            folder = site / data_dir / service
            if folder.is_dir():
                files += sum(1 for p in folder.rglob("*") if p.is_file())
                freed += tree_size(folder)
                shutil.rmtree(folder)
    return StepResult(
        "aws-sdk-data",
        files_removed=files,
        bytes_removed=freed,
        notes=(f"kept {len(keep)} of {len(available)} services: {', '.join(sorted(keep))}",),
    )
