"""`inv deploy`: gates, sam deploy, verify and record; on a failure the stage ends on its last release."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..build.build_layers import BuildRequest, build_layers
from ..config.project import load_project
from ..config.stages import load_stage, refuse_unrouted_alarms
from .deploy_log import DeployLog
from .deploy_plan import TEMPLATE, DeployPlan, intended, layer_arns, plan_deploy
from .deployed_state import deployed_ok, stack_status
from .model_gate import check_stage_models
from .release_history import History, Release, refuse_unknown_latest
from .release_records import build_report, deployed_template, differences, new_release
from .restore import deploy_failed, not_compared, recover_from_interrupt, verification_failed, verify
from .sam_cli import deploy_command, run_deploy, validate
from .security_scan import check_template_security, find_checkov
from .stage_context import StageContext, confirm_policy, read_checked_history, with_stage


@dataclass(frozen=True)
class DeployRequest:
    root: Path
    stage: str
    yes: bool = False  # skip the change-set question of stages that confirm
    dry_run: bool = False  # show the change set, execute nothing
    interactive: bool = False  # a person at a terminal can answer the question


def execute_and_record(
    ctx: StageContext, plan: DeployPlan, history: History, confirm: bool, dry_run: bool
) -> Release | None:
    """sam deploy of the plan, then verify and record (or restore the current release on a failure)."""
    current = history.current
    started = time.time()
    command = deploy_command(ctx.sam, ctx.root, ctx.stage, plan.template_path, plan.parameters, confirm, not dry_run)
    with ctx.log.step("sam deploy"):
        result = run_deploy(command, ctx.session.environment(), plan.template_path.parent, ctx.log.output, confirm)
    if dry_run:
        ctx.log.say("Dry run: the change set above was not executed; the stage is unchanged.")
        return None
    status = stack_status(ctx.session)
    if not deployed_ok(result.returncode, status):
        deploy_failed(ctx, current, status, result.returncode, result.tail(), started)
    with ctx.log.step("verify the stage"):
        state, problems, notes = verify(
            ctx, lambda state: intended(plan, state), "the template and the build", "template says"
        )
    if problems:
        verification_failed(ctx, current, problems)
    arns = layer_arns(plan.pinned, plan.layer_folders, state)
    layers = {
        plan.layer_folders[lid]: {"logical_id": lid, "arn": arn, "sha256": plan.layer_shas[plan.layer_folders[lid]]}
        for lid, arn in arns.items()
    }
    deployed = deployed_template(ctx.session)
    release = new_release(ctx, history.next_number, "deploy", state, layers, plan.parameters, deployed)
    unchanged = current is not None and (release.template_sha256, release.parameters) == (
        current.template_sha256,
        current.parameters,
    )
    if current is not None and unchanged and not differences(state, current):
        ctx.log.say(f"Nothing changed: stage {ctx.stage.name!r} stays on release {current.number}.")
        return current
    with ctx.log.step(f"record release {release.number}"):
        release = ctx.store.record(release, deployed, build_report(ctx.paths), ctx.log.say)
    ctx.log.say(f"Stage {ctx.stage.name!r} is on release {release.number} (verified{not_compared(notes)}).")
    return release


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
        try:
            return execute_and_record(ctx, plan, history, confirm, request.dry_run)
        except KeyboardInterrupt:
            # From sam deploy to the record, CloudFormation may go on without us.
            recover_from_interrupt(ctx, history.current)
            raise

    return with_stage(request.root, stage, "deploy", lambda log, sam: deploy_gates(request.root, log, sam), work)
