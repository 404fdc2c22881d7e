"""What a stage's account and region hold, read through the stage's clients: the thin AWS edge
of `inv layer-usage` and `inv prune-layers`."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from ..config.stages import Stage
from ..config.template import TEMPLATE, load_template
from ..core.errors import LayerToolError, OperationsError
from ..core.paths import BuildPaths
from ..deploy.deploy_template import layer_uses, template_parameters
from ..deploy.layer_versions import split_layer_arn
from ..deploy.local_emulator import dead_emulator
from ..deploy.release_history import History, Release
from ..deploy.releases import ReleaseStore, release_store
from ..deploy.stage_session import StageSession
from .layer_usage_rules import Alias, FunctionVersion, LayerVersion, RecordedRelease


@dataclass(frozen=True)
class OpenStage:
    """A read-only hold on a stage: its release history and, through it, its session (credentials
    checked) and stage."""

    root: Path
    store: ReleaseStore

    @property
    def session(self) -> StageSession:
        return self.store.session

    @property
    def stage(self) -> Stage:
        return self.store.session.stage

    @property
    def paths(self) -> BuildPaths:
        return BuildPaths.of(self.root)


def open_stage(root: Path, stage_name: str, command: str) -> OpenStage:
    return OpenStage(root, release_store(root, stage_name, command))


def warn(line: str) -> None:
    """Warnings go to stderr: the report on stdout stays what it was."""
    print(f"Warning: {line}", file=sys.stderr)


def aws_failure(opened: OpenStage, command: str, what: str, exc: Exception) -> LayerToolError:
    """A failed AWS call of `command`: the emulator's death when that is the cause (exit 8), else
    the call's own error."""
    died = dead_emulator(opened.paths, opened.session.endpoint_url, f"{command} --stage {opened.stage.name}")
    if died is not None:
        return died
    stage = opened.stage
    return OperationsError(
        f"Stage {stage.name!r} ({stage.region}): {what} failed: {exc}\n"
        "Fix: check the stage's credentials and permissions (lambda:List*, lambda:GetLayerVersion, "
        "logs:FilterLogEvents, s3:GetObject on the release records); nothing was changed."
    )


def project_layer_names(root: Path, stage: Stage, releases: list[Release]) -> list[str]:
    """The layer names the template gives this stage, and any a recorded release still names."""
    template = load_template(root / TEMPLATE)
    parameters = template_parameters(template, stage.parameters)
    names = {use.layer_name for use in layer_uses(template, (root / TEMPLATE).parent, parameters).values()}
    for release in releases:
        for arn in release_layer_arns(release):
            names.add(split_layer_arn(arn)[0].rsplit(":", 1)[-1])
    return sorted(names)


def release_layer_arns(release: Release) -> frozenset[str]:
    arns = {layer["arn"] for layer in release.layers.values() if str(layer.get("arn", "")).startswith("arn:")}
    for function in release.functions.values():
        arns.update(str(arn) for arn in function.get("layers", []))
    return frozenset(arns)


def recorded_releases(releases: list[Release]) -> list[RecordedRelease]:
    return [RecordedRelease(r.number, release_layer_arns(r)) for r in releases]


def layer_versions(lambda_client: Any, layer_name: str) -> list[LayerVersion]:
    """Every version of `layer_name` (none when the layer does not exist)."""
    found = []
    try:
        for page in lambda_client.get_paginator("list_layer_versions").paginate(LayerName=layer_name):
            for item in page.get("LayerVersions", []):
                found.append(
                    LayerVersion(
                        layer_name, int(item["Version"]), str(item["LayerVersionArn"]), item.get("CreatedDate", "")
                    )
                )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []
        raise
    return found


def function_versions(lambda_client: Any) -> list[FunctionVersion]:
    """Every version of every function in the account and region: a layer version used by any
    function, this project's or not, is in use."""
    found = []
    for page in lambda_client.get_paginator("list_functions").paginate(FunctionVersion="ALL"):
        for item in page.get("Functions", []):
            found.append(
                FunctionVersion(
                    function=str(item["FunctionName"]),
                    version=str(item.get("Version", "$LATEST")),
                    layers=tuple(str(layer["Arn"]) for layer in item.get("Layers", [])),
                )
            )
    return found


def aliases(lambda_client: Any, function_names: list[str]) -> list[Alias]:
    found = []
    for name in function_names:
        for page in lambda_client.get_paginator("list_aliases").paginate(FunctionName=name):
            for item in page.get("Aliases", []):
                weights = item.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
                found.append(Alias(name, str(item["Name"]), (str(item["FunctionVersion"]), *map(str, weights))))
    return found


@dataclass(frozen=True)
class Inventory:
    versions: list[LayerVersion]
    functions: list[FunctionVersion]
    aliases: list[Alias]
    releases: list[RecordedRelease]
    history: History  # with the records that could not be read, whose references are unknown


def read_inventory(opened: OpenStage, command: str) -> Inventory:
    try:
        history = opened.store.history()
        recorded = list(history.releases)
        client = opened.session.client("lambda")
        versions = [
            v for name in project_layer_names(opened.root, opened.stage, recorded) for v in layer_versions(client, name)
        ]
        functions = function_versions(client)
        names = sorted({f.function for f in functions})
        return Inventory(versions, functions, aliases(client, names), recorded_releases(recorded), history)
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(opened, command, "reading the layer versions, functions and releases", exc) from None


def delete_layer_version(lambda_client: Any, version: LayerVersion) -> None:
    layer_arn, number = split_layer_arn(version.arn)
    lambda_client.delete_layer_version(LayerName=layer_arn, VersionNumber=number)
