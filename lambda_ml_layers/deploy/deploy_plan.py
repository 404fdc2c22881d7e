"""The deploy template of a stage: what sam deploy gets, and the layer versions it should end on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.stages import alarm_destination, alarm_parameters
from ..config.template import TEMPLATE, load_template
from ..core.layer_zip import sha256_of
from .deploy_template import (
    function_layers,
    layer_uses,
    layers_sha_parameters,
    pin_layers,
    template_parameters,
    with_artifacts,
    write_function_zips,
    write_template,
)
from .deployed_state import StackState
from .layer_versions import code_sha256, matching_version
from .live_config import IntendedFunction, intended_functions
from .stage_context import StageContext


@dataclass(frozen=True)
class DeployPlan:
    template: dict[str, Any]  # what sam deploy gets
    template_path: Path
    parameters: dict[str, str]
    layer_shas: dict[str, str]  # layer folder -> sha256 of its zip
    pinned: dict[str, str]  # layer logical id -> existing version ARN
    layer_folders: dict[str, str]  # layer logical id -> folder
    function_code: dict[str, str]  # function logical id -> CodeSha256 of the package it uploads


def plan_deploy(ctx: StageContext, layers_dir: Path) -> DeployPlan:
    """The deploy template of the stage, its layers taken from `layers_dir` (the build of the
    stage's runtime and architecture)."""
    template_path = ctx.root / TEMPLATE
    template = load_template(template_path)
    parameters = template_parameters(template, {**ctx.stage.parameters, **alarm_parameters(ctx.stage)})
    ctx.log.say(f"    {alarm_destination(ctx.stage)}")
    uses = layer_uses(template, layers_dir, parameters)
    shas = {logical_id: sha256_of(use.zip_path) for logical_id, use in uses.items()}
    work = ctx.paths.deploy_dir(ctx.stage.name)
    function_zips = write_function_zips(template, template_path.parent, work / "functions")
    function_shas = {logical_id: sha256_of(path) for logical_id, path in function_zips.items()}
    parameters.update(layers_sha_parameters(template, shas, function_shas, parameters))
    lambda_client = ctx.session.client("lambda")
    pinned = {}
    for logical_id, use in uses.items():
        arn = matching_version(lambda_client, use.layer_name, code_sha256(use.zip_path))
        if arn:
            pinned[logical_id] = arn
            ctx.log.say(f"    {use.folder}: unchanged, already published as {arn}")
        else:
            ctx.log.say(f"    {use.folder}: new content, CloudFormation publishes one version of {use.layer_name}")
    unpinned = {lid: use.zip_path for lid, use in uses.items() if lid not in pinned}
    derived = with_artifacts(pin_layers(template, pinned), unpinned, function_zips)
    return DeployPlan(
        template=derived,
        template_path=write_template(derived, work / "template.json"),
        parameters=parameters,
        layer_shas={use.folder: shas[lid] for lid, use in uses.items()},
        pinned=pinned,
        layer_folders={lid: use.folder for lid, use in uses.items()},
        function_code={logical_id: code_sha256(path) for logical_id, path in function_zips.items()},
    )


def layer_arn(state: StackState, logical_id: str) -> str:
    """The version ARN of a layer the stack published (SAM renames it <LogicalId><10 hex digits>)."""
    renamed = re.compile(re.escape(logical_id) + r"([0-9a-f]{10})?")
    for logical, (kind, physical) in state.resources.items():
        if kind == "AWS::Lambda::LayerVersion" and renamed.fullmatch(logical):
            return physical
    return f"<{logical_id} not in the stack>"


def expected_layers(template: dict[str, Any], state: StackState) -> dict[str, list[str]]:
    """Each function's layer version ARNs as this template asks for them."""
    return {
        function: [item if item.startswith("arn:") else layer_arn(state, item) for item in layers]
        for function, layers in function_layers(template).items()
    }


def intended(plan: DeployPlan, state: StackState) -> dict[str, IntendedFunction]:
    """What each function's live version should be after this deploy."""
    resources = {logical_id: physical for logical_id, (_kind, physical) in state.resources.items()}
    layers = expected_layers(plan.template, state)
    return intended_functions(plan.template, plan.parameters, resources, layers, plan.function_code)


def layer_arns(pinned: dict[str, str], folders: dict[str, str], state: StackState) -> dict[str, str]:
    """Layer logical id -> the version ARN the stage now uses for it."""
    return {lid: pinned.get(lid) or layer_arn(state, lid) for lid in folders}
