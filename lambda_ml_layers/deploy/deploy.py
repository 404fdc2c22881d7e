"""`inv deploy`: gates, sam deploy, verify and record; on a failure the stage ends on its last release."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..build.build_layers import BuildRequest, build_layers
from ..config.project import load_project
from ..config.stages import SAMCONFIG, Stage, load_stage, refuse_unrouted_alarms, stage_target
from ..config.template import ARCH_PARAMETER, RUNTIME_PARAMETER, TEMPLATE
from ..core.errors import NotVerified
from ..core.runtimes import RUNTIMES
from ..core.toolchains import Toolchain, find_toolchain
from .deploy_log import DeployLog
from .deploy_plan import DeployPlan, intended, layer_arns, plan_deploy
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


def build_target(ctx: StageContext, plan: DeployPlan, runtime: str, arch: str) -> Target:
    """The build the gates just made (for the stage's runtime and arch), as the target of a deploy."""

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
        build_report=build_report(ctx.paths, runtime, arch),
    )


def unverifiable_problem(stage: Stage, runtime: str, toolchain: Toolchain, verifiable: list[str]) -> str | None:
    """Why the stage's layers cannot be verified on this machine (None: they can). Checked before
    anything is built: a build for it would end in NotVerified after building every layer."""
    if toolchain.python is not None:
        return None
    where = f"{SAMCONFIG} [{stage.name}.deploy.parameters] parameter_overrides"
    instead = " or ".join(verifiable)
    fix = (
        f"set {RUNTIME_PARAMETER}={verifiable[-1]} ({instead} can be verified for {toolchain.arch} here) in {where}"
        if verifiable
        else f"set {ARCH_PARAMETER}=x86_64 in {where}, or run `python3 scripts/bootstrap.py` as root"
    )
    return (
        f"Stage {stage.name!r} runs on {toolchain.arch} {runtime}, but its layers cannot be verified on this "
        f"machine: {'; '.join(toolchain.missing)}. A deploy uploads only built, verified layers, so nothing was "
        f"built or uploaded and the stage is as it was.\n  Fix: {fix}."
    )


def refuse_unverifiable(stage: Stage, runtime: str, arch: str) -> None:
    """NotVerified (exit 31) for a stage whose runtime and arch have no interpreter here, even under qemu."""
    toolchain = find_toolchain(RUNTIMES[runtime], arch)
    if toolchain.python is None:
        verifiable = [name for name, known in RUNTIMES.items() if find_toolchain(known, arch).python is not None]
        problem = unverifiable_problem(stage, runtime, toolchain, verifiable)
        raise NotVerified(str(problem))


def deploy_gates(root: Path, log: DeployLog, sam: Path, runtime: str, arch: str) -> None:
    """Everything checked before anything is uploaded."""
    template = root / TEMPLATE
    with log.step(f"build layers for {runtime}/{arch} (cached) and size gates"):
        build_layers(BuildRequest(root=root, runtime=runtime, arch=arch))
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
    project = load_project(request.root)
    runtime, arch = stage_target(request.root, stage, (project.default_runtime, project.default_arch))
    refuse_unverifiable(stage, runtime, arch)

    def work(ctx: StageContext) -> Release | None:
        history = read_checked_history(ctx)
        refuse_unknown_latest(history, stage.name)
        layers_dir = ctx.paths.output_dir(runtime, arch)
        with ctx.log.step("models in the stage's bucket against pruned layers"):
            check_stage_models(project, ctx.session, layers_dir)
        with ctx.log.step(f"deploy template ({runtime}/{arch} layers from {layers_dir.relative_to(ctx.root)})"):
            plan = plan_deploy(ctx, layers_dir)
        release, notes = move_stage(
            ctx, build_target(ctx, plan, runtime, arch), history.current, confirm, not request.dry_run
        )
        if release is not None and release is not history.current:
            ctx.log.say(f"Stage {stage.name!r} is on release {release.number} (verified{not_compared(notes)}).")
        return release

    def gates(log: DeployLog, sam: Path) -> None:
        deploy_gates(request.root, log, sam, runtime, arch)

    return with_stage(request.root, stage, "deploy", gates, work)
