"""`inv deploy`: gates, sam deploy, verify and record; on a failure the stage ends on its last release."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..build.build_layers import BuildRequest, build_layers
from ..config.project import load_project
from ..config.stages import load_stage, refuse_unrouted_alarms
from .deploy_log import DeployLog
from .deploy_plan import TEMPLATE, DeployPlan, intended, layer_arns, plan_deploy
from .deployed_state import StackState
from .model_gate import check_stage_models
from .release_history import Release, refuse_unknown_latest
from .release_records import build_report
from .restore import Target, move_stage, not_compared
from .sam_cli import validate
from .security_scan import check_template_security, find_checkov
from .stage_context import StageContext, confirm_policy, read_checked_history, with_stage


@dataclass(frozen=True)
class DeployRequest:
    root: Path
    stage: str
    yes: bool = False  # skip the change-set question of stages that confirm
    dry_run: bool = False  # show the change set, execute nothing
    interactive: bool = False  # a person at a terminal can answer the question


def build_target(ctx: StageContext, plan: DeployPlan) -> Target:
    """The build the gates just made, as the target of a deploy."""

    def layers(state: StackState) -> dict[str, dict[str, str]]:
        arns = layer_arns(plan.pinned, plan.layer_folders, state)
        return {
            plan.layer_folders[lid]: {"logical_id": lid, "arn": arn, "sha256": plan.layer_shas[plan.layer_folders[lid]]}
            for lid, arn in arns.items()
        }

    return Target(
        kind="deploy",
        name="the build",
        template_path=plan.template_path,
        parameters=plan.parameters,
        expected=lambda state: intended(plan, state),
        source="the template and the build",
        says="template says",
        layers=layers,
        build_report=build_report(ctx.paths),
    )


def deploy_gates(root: Path, log: DeployLog, sam: Path) -> None:
    """Everything checked before anything is uploaded."""
    template = root / TEMPLATE
    with log.step("build layers (cached) and size gates"):
        build_layers(BuildRequest(root=root))
    with log.step("sam validate --lint"):
        validate(sam, template, log.output)
    with log.step("security scan (checkov)"):
        scan = check_template_security(template, find_checkov(root))
        log.say(f"    checkov: {scan.passed} passed, {len(scan.skipped)} skipped with reasons, 0 failed")


def deploy(request: DeployRequest) -> Release | None:
    """Gates, sam deploy, verify, record; on any failure the stage ends on its last recorded release."""
    stage = load_stage(request.root, request.stage)
    confirm = confirm_policy(stage, request.yes, request.interactive, request.dry_run)
    refuse_unrouted_alarms(stage)

    def work(ctx: StageContext) -> Release | None:
        history = read_checked_history(ctx)
        refuse_unknown_latest(history, stage.name)
        with ctx.log.step("models in the stage's bucket against pruned layers"):
            project = load_project(ctx.root)
            check_stage_models(
                project, ctx.session, ctx.paths.output_dir(project.default_runtime, project.default_arch)
            )
        with ctx.log.step("deploy template"):
            plan = plan_deploy(ctx)
        release, notes = move_stage(ctx, build_target(ctx, plan), history.current, confirm, not request.dry_run)
        if release is not None and release is not history.current:
            ctx.log.say(f"Stage {stage.name!r} is on release {release.number} (verified{not_compared(notes)}).")
        return release

    return with_stage(request.root, stage, "deploy", lambda log, sam: deploy_gates(request.root, log, sam), work)
