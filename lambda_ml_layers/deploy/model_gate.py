"""The deploy's pickle guard: the models already in the stage's model bucket against the layers
about to be deployed. A pruned layer that lost a module one of them needs is refused before
anything is uploaded (the rule is the build's, build/pruning/models.py); whole layers are not read.
"""

from __future__ import annotations

import json
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from ..build.artifacts import LayerBuild
from ..build.pruning.contract import PrunedLayer
from ..build.pruning.models import artifact_problems, is_artifact, pruned_layers, refusal
from ..config.project import ProjectConfig
from ..core.errors import DeployGateError
from .stage_session import StageSession

MODEL_BUCKET = "ModelBucket"  # its logical id in infra/template.yaml


def published_layers(output_dir: Path) -> dict[str, LayerBuild]:
    """The layers the build just published for the deploy's target (each `<layer>.json` beside its zip)."""
    builds = {}
    for manifest in sorted(output_dir.glob("*.json")):
        zip_path = manifest.with_suffix(".zip")
        if zip_path.is_file():
            data = json.loads(manifest.read_text(encoding="utf-8"))
            builds[manifest.stem] = LayerBuild.from_manifest(data, zip_path, cache_hit=True, seconds=0.0)
    return builds


def model_bucket(session: StageSession) -> str | None:
    """The stage's model bucket, or None before the stack (and so the bucket) exists."""
    try:
        found = session.client("cloudformation").describe_stack_resource(
            StackName=session.stage.stack_name, LogicalResourceId=MODEL_BUCKET
        )
    except ClientError:
        return None
    return str(found["StackResourceDetail"].get("PhysicalResourceId") or "") or None


def bucket_artifacts(session: StageSession, bucket: str) -> dict[str, bytes]:
    """Every model file in the bucket, by its s3:// name."""
    s3 = session.client("s3")
    try:
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])
            if is_artifact(item["Key"])
        ]
        return {f"s3://{bucket}/{key}": s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}
    except (ClientError, BotoCoreError) as exc:
        raise DeployGateError(
            f"The models in s3://{bucket} could not be read to check them against the pruned layers: {exc}. "
            f"Fix: grant s3:ListBucket and s3:GetObject on it to the deploying role. Nothing was uploaded."
        ) from None


def check_stage_models(project: ProjectConfig, session: StageSession, output_dir: Path) -> list[PrunedLayer]:
    """Raise PrunedModuleMissing if a model in the stage's bucket needs what a pruned layer published in
    `output_dir` lost. Returns the pruned layers checked (none: whole layers, and nothing was read)."""
    layers = pruned_layers(project, published_layers(output_dir))
    bucket = model_bucket(session) if layers else None
    if bucket is not None:
        problems = artifact_problems(bucket_artifacts(session, bucket), layers)
        if problems:
            raise refusal(problems, "nothing was deployed")
    return [layer for layer, _ in layers]
