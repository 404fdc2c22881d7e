"""`inv deploy` and `inv rollback`: the story of one change of a stage, each step in its own module."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from ..build import BuildRequest, build_layers
from ..command_runner import call
from ..errors import DeployFailed, DeployGateError, ReleaseError, VerificationFailed
from ..layer_zip import sha256_of
from ..paths import BuildPaths
from ..sam_template import load_template, parse_template
from ..security_scan import check_template_security, find_checkov
from .alarm_routing import alarm_destination, alarm_parameters, refuse_unrouted_alarms
from .deploy_log import DeployLog
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
from .deployed_state import DEPLOYED, StackState, check_stack, read_stack, stack_status
from .layer_versions import code_sha256, matching_version, missing_versions
from .local_emulator import emulator_endpoint
from .releases import Release, ReleaseStore
from .sam_cli import deploy_command, find_sam, run_deploy, validate
from .smoke import smoke_run
from .stage_lock import refuse_if_in_progress, stage_lock
from .stage_session import Caller, StageSession
from .stages import Stage, load_stage

TEMPLATE = Path("infra/template.yaml")
SETTLE_SECONDS = 1800


@dataclass(frozen=True)
class DeployRequest:
    root: Path
    stage: str
    yes: bool = False  # skip the change-set question of stages that confirm
    dry_run: bool = False  # show the change set, execute nothing
    interactive: bool = False  # a person at a terminal can answer the question


@dataclass(frozen=True)
class RollbackRequest:
    root: Path
    stage: str
    to: int | None = None  # default: the release before the current one
    yes: bool = False
    interactive: bool = False


@dataclass
class StageContext:
    """One command's hold on one stage: where it is, who is calling, its history and log."""

    root: Path
    stage: Stage
    paths: BuildPaths
    log: DeployLog
    session: StageSession
    caller: Caller
    store: ReleaseStore
    sam: Path


def _open_stage(root: Path, stage: Stage, log: DeployLog) -> tuple[StageSession, Caller, ReleaseStore]:
    paths = BuildPaths.of(root)
    endpoint = emulator_endpoint(paths, start=True, say=log.say) if stage.emulated else None
    session = StageSession(stage, endpoint)
    with log.step(f"credentials and region for stage {stage.name}"):
        caller = session.caller()
        where = f"the local emulator at {endpoint}" if endpoint else f"account {caller.account}, {stage.region}"
        log.say(f"    {where}, as {caller.arn}")
        refuse_if_in_progress(stack_status(session), stage.name, stage.stack_name)
    return session, caller, ReleaseStore(session, paths.releases(stage.name))


def _confirm_policy(stage: Stage, yes: bool, interactive: bool, dry_run: bool) -> bool:
    """Whether sam must ask before executing; refuses when it must ask and nobody can answer."""
    if dry_run or yes or not stage.confirm_changeset:
        return False
    if not interactive:
        raise DeployGateError(
            f"Stage {stage.name!r} asks to confirm every change set (confirm_changeset in infra/samconfig.toml), "
            "but there is no terminal to answer. Fix: run it in a terminal, pass --yes to deploy without the "
            "question, or --dry-run to only see the change set. Nothing was uploaded."
        )
    return True


# --- the deploy template ---------------------------------------------------------------------


@dataclass(frozen=True)
class DeployPlan:
    template: dict[str, Any]  # what sam deploy gets
    template_path: Path
    parameters: dict[str, str]
    layer_shas: dict[str, str]  # layer folder -> sha256 of its zip
    pinned: dict[str, str]  # layer logical id -> existing version ARN
    layer_folders: dict[str, str]  # layer logical id -> folder


def plan_deploy(ctx: StageContext) -> DeployPlan:
    template_path = ctx.root / TEMPLATE
    template = load_template(template_path)
    parameters = template_parameters(template, {**ctx.stage.parameters, **alarm_parameters(ctx.stage)})
    ctx.log.say(f"    {alarm_destination(ctx.stage)}")
    uses = layer_uses(template, template_path.parent, parameters)
    shas = {logical_id: sha256_of(use.zip_path) for logical_id, use in uses.items()}
    work = ctx.paths.deploy_dir(ctx.stage.name)
    function_zips = write_function_zips(template, template_path.parent, work / "functions")
    function_shas = {logical_id: sha256_of(path) for logical_id, path in function_zips.items()}
    parameters.update(layers_sha_parameters(template, shas, function_shas))
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
    )


def _layer_arn(state: StackState, logical_id: str) -> str:
    """The version ARN of a layer the stack published (SAM renames it <LogicalId><10 hex digits>)."""
    renamed = re.compile(re.escape(logical_id) + r"([0-9a-f]{10})?")
    for logical, (kind, physical) in state.resources.items():
        if kind == "AWS::Lambda::LayerVersion" and renamed.fullmatch(logical):
            return physical
    return f"<{logical_id} not in the stack>"


def expected_layers(template: dict[str, Any], state: StackState) -> dict[str, list[str]]:
    """Each function's layer version ARNs as this template asks for them."""
    return {
        function: [item if item.startswith("arn:") else _layer_arn(state, item) for item in layers]
        for function, layers in function_layers(template).items()
    }


# --- failure explained -----------------------------------------------------------------------


def failure_events(session: StageSession, since: float) -> list[dict[str, str]]:
    """The stack's failed resources since `since` (epoch seconds), oldest first."""
    events = []
    try:
        pages = session.client("cloudformation").get_paginator("describe_stack_events")
        for page in pages.paginate(StackName=session.stage.stack_name):
            for event in page["StackEvents"]:
                if event["Timestamp"].timestamp() < since - 5:
                    break
                if event.get("ResourceStatus", "").endswith("_FAILED"):
                    events.append(
                        {
                            "resource": str(event.get("LogicalResourceId")),
                            "type": str(event.get("ResourceType")),
                            "status": str(event.get("ResourceStatus")),
                            "reason": str(event.get("ResourceStatusReason", "")),
                        }
                    )
    except (ClientError, BotoCoreError):  # the explanation must not hide the failure it explains
        return events
    return list(reversed(events))


def _explain(events: list[dict[str, str]]) -> str:
    causes = [e for e in events if e["resource"] and "cancelled" not in e["reason"].lower()] or events
    return "\n".join(f"  - {e['resource']} ({e['type']}): {e['status']}: {e['reason']}" for e in causes[:8])


def _deployed_ok(returncode: int, status: str | None) -> bool:
    return returncode == 0 and status in DEPLOYED


def _verify(ctx: StageContext, expected: Callable[[StackState], dict[str, list[str]]]) -> tuple[StackState, list[str]]:
    """The stage as deployed, and every problem with it: live aliases' layers, the state machine,
    then (only when those hold) a smoke run of each function."""
    state = read_stack(ctx.session)
    problems = check_stack(state, expected(state)) or smoke_run(
        ctx.session, [state.functions[f] for f in sorted(state.functions)]
    )
    return state, problems


# --- releases --------------------------------------------------------------------------------


def _git(root: Path) -> tuple[str, bool]:
    head = call(["git", "rev-parse", "HEAD"], cwd=root, error=None)
    status = call(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, error=None)
    commit = head.output.strip() if head.returncode == 0 else "unknown (not a git checkout)"
    return commit, bool(status.output.strip()) if status.returncode == 0 else True


def _build_report(paths: BuildPaths) -> dict[str, Any] | None:
    """The report of the build the deploy gates just made (the default target's, which the template
    points at), stored with the release for `inv size-report`; a release is recorded even without it."""
    try:
        data = json.loads(paths.default_report.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _deployed_template(session: StageSession) -> dict[str, Any]:
    body = session.client("cloudformation").get_template(StackName=session.stage.stack_name, TemplateStage="Original")[
        "TemplateBody"
    ]
    parsed = parse_template(body) if isinstance(body, str) else body
    if not isinstance(parsed, dict):
        raise DeployFailed(f"CloudFormation returned a template that is not a mapping for {session.stage.stack_name}.")
    return parsed


def _release(
    ctx: StageContext,
    number: int,
    kind: str,
    state: StackState,
    layers: dict[str, dict[str, str]],
    parameters: dict[str, str],
    template: dict[str, Any],
    restores: int | None = None,
    note: str = "",
) -> Release:
    commit, dirty = _git(ctx.root)
    return Release(
        number=number,
        kind=kind,
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        stage=ctx.stage.name,
        stack_name=ctx.stage.stack_name,
        git_commit=commit,
        git_dirty=dirty,
        caller_account=ctx.caller.account,
        caller_arn=ctx.caller.arn,
        layers=layers,
        functions={
            logical: {
                "name": f.name,
                "version": f.version,
                "layers": list(f.layers),
                "code_sha256": str(f.configuration.get("CodeSha256", "")),
            }
            for logical, f in state.functions.items()
        },
        template_sha256=hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest(),
        parameters=parameters,
        restores=restores,
        note=note,
    )


def differences(state: StackState, release: Release) -> list[str]:
    """How the running stage differs from a release (code and layers of each live alias)."""
    problems = []
    for logical, recorded in release.functions.items():
        running = state.functions.get(logical)
        if running is None:
            problems.append(f"{logical} is gone")
        elif list(running.layers) != recorded["layers"]:
            problems.append(
                f"{logical} runs layers {list(running.layers)}, release {release.number} has {recorded['layers']}"
            )
        elif recorded.get("code_sha256") and running.configuration.get("CodeSha256") != recorded["code_sha256"]:
            problems.append(f"{logical} runs other code than release {release.number}")
    return problems


# --- after a failure: back to the last recorded release -----------------------------------


def _layer_arns(pinned: dict[str, str], folders: dict[str, str], state: StackState) -> dict[str, str]:
    """Layer logical id -> the version ARN the stage now uses for it."""
    return {lid: pinned.get(lid) or _layer_arn(state, lid) for lid in folders}


def _deploy_failed(
    ctx: StageContext, current: Release | None, status: str | None, returncode: int, tail: str, started: float
) -> None:
    events = failure_events(ctx.session, started)
    ctx.log.event("stack_events", events=events, status=status, sam_exit=returncode)
    cause = _explain(events) if events else f"sam deploy exited {returncode}:\n{tail}"
    state = read_stack(ctx.session)
    where = _where_is_stage(ctx, current, state, status)
    raise DeployFailed(
        f"The deploy of stage {ctx.stage.name!r} failed (stack {status or 'not created'}):\n{cause}\n{where}"
    )


def _where_is_stage(ctx: StageContext, current: Release | None, state: StackState, status: str | None) -> str:
    """Make sure the stage is back on `current` (restore it if CloudFormation left it elsewhere); say so."""
    if current is None:
        return (
            f"Stage {ctx.stage.name!r} has no earlier release to return to (stack {status or 'not created'}). "
            "Fix the cause and deploy again."
        )
    problems = differences(state, current)
    if not problems:
        return (
            f"Stage {ctx.stage.name!r} is still on release {current.number} "
            "(checked: every live alias runs its code and layers)."
        )
    ctx.log.say(f"The stage is not on release {current.number} ({'; '.join(problems)}); restoring it.")
    restored = _redeploy_release(ctx, current, "restore", f"after a failed deploy: {'; '.join(problems)}")
    return (
        f"Stage {ctx.stage.name!r} was restored to release {current.number}'s code and layers "
        f"(recorded as release {restored.number})."
    )


def _verification_failed(ctx: StageContext, current: Release | None, problems: list[str]) -> None:
    listed = "\n".join(f"  - {p}" for p in problems)
    ctx.log.event("verification_failed", problems=problems)
    if current is None:
        raise VerificationFailed(
            f"The first deploy of stage {ctx.stage.name!r} did not pass its checks, and there is no earlier release "
            f"to return to:\n{listed}\nFix the cause and deploy again."
        )
    ctx.log.say(f"Post-deploy checks failed; restoring release {current.number}.")
    restored = _redeploy_release(ctx, current, "restore", "after failed post-deploy checks: " + "; ".join(problems))
    raise VerificationFailed(
        f"The deploy of stage {ctx.stage.name!r} failed its post-deploy checks:\n{listed}\n"
        f"Rolled back to release {current.number} (verified; recorded as release {restored.number})."
    )


def _recover_from_interrupt(ctx: StageContext, current: Release | None) -> None:
    """Ctrl-C during sam deploy: CloudFormation goes on without us; wait for it, then make sure
    the stage ends on a recorded release."""
    ctx.log.say("Interrupted: waiting for CloudFormation to finish what it started (Ctrl-C again to stop waiting)...")
    try:
        status = _settle(ctx)
        state = read_stack(ctx.session)
        # The interrupted command may have recorded its release just before the Ctrl-C.
        recorded = ctx.store.releases()
        latest = recorded[-1] if recorded else current
        ctx.log.say(_where_is_stage(ctx, latest, state, status))
    except KeyboardInterrupt:
        ctx.log.say(
            f"Stopped waiting. Check the stage with `inv releases --stage {ctx.stage.name}` and "
            f"`inv rollback --stage {ctx.stage.name}` if it is not on a release."
        )


def _settle(ctx: StageContext) -> str | None:
    deadline = time.monotonic() + SETTLE_SECONDS
    status = stack_status(ctx.session)
    while status and status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS" and time.monotonic() < deadline:
        time.sleep(5)
        status = stack_status(ctx.session)
    return status


def _redeploy_release(ctx: StageContext, target: Release, kind: str, note: str, confirm: bool = False) -> Release:
    """Deploy a recorded release again: its exact template and parameters, every layer pinned to
    the version ARN it recorded, so nothing is published but (maybe) function versions."""
    missing = missing_versions(ctx.session.client("lambda"), [layer["arn"] for layer in target.layers.values()])
    if missing:
        raise ReleaseError(
            f"Release {target.number} uses layer versions that no longer exist: {', '.join(missing)}. "
            "It cannot be restored exactly; deploy a fixed build instead."
        )
    template = ctx.store.template(target)
    pinned = {layer["logical_id"]: layer["arn"] for layer in target.layers.values()}
    derived = pin_layers(template, pinned)
    work = ctx.paths.deploy_dir(ctx.stage.name)
    template_path = write_template(derived, work / f"release-{target.number}.json")
    started = time.time()
    command = deploy_command(ctx.sam, ctx.root, ctx.stage, template_path, target.parameters, confirm, True)
    with ctx.log.step(f"sam deploy of release {target.number}"):
        result = run_deploy(command, ctx.session.environment(), work, ctx.log.output, confirm)
    status = stack_status(ctx.session)
    if not _deployed_ok(result.returncode, status):
        events = failure_events(ctx.session, started)
        ctx.log.event("stack_events", events=events, status=status, sam_exit=result.returncode)
        raise DeployFailed(
            f"Returning stage {ctx.stage.name!r} to release {target.number} failed (stack {status}):\n"
            + (_explain(events) or result.tail())
        )
    recorded = {logical: list(function["layers"]) for logical, function in target.functions.items()}
    with ctx.log.step(f"verify release {target.number}"):
        state, problems = _verify(ctx, lambda _state: recorded)
    if problems:
        raise VerificationFailed(
            f"Stage {ctx.stage.name!r} was returned to release {target.number} but does not pass its checks:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    history = ctx.store.releases()
    deployed = _deployed_template(ctx.session)
    release = _release(
        ctx,
        history[-1].number + 1,
        kind,
        state,
        dict(target.layers),
        dict(target.parameters),
        deployed,
        target.number,
        note,
    )
    with ctx.log.step(f"record release {release.number}"):
        ctx.store.record(release, deployed, ctx.store.build_report(target))
    return release


def _execute_and_record(
    ctx: StageContext, plan: DeployPlan, current: Release | None, confirm: bool, dry_run: bool
) -> Release | None:
    """sam deploy of the plan, then verify and record (or restore `current` on a failure)."""
    started = time.time()
    command = deploy_command(ctx.sam, ctx.root, ctx.stage, plan.template_path, plan.parameters, confirm, not dry_run)
    with ctx.log.step("sam deploy"):
        result = run_deploy(command, ctx.session.environment(), plan.template_path.parent, ctx.log.output, confirm)
    if dry_run:
        ctx.log.say("Dry run: the change set above was not executed; the stage is unchanged.")
        return None
    status = stack_status(ctx.session)
    if not _deployed_ok(result.returncode, status):
        _deploy_failed(ctx, current, status, result.returncode, result.tail(), started)
    with ctx.log.step("verify the stage"):
        state, problems = _verify(ctx, lambda state: expected_layers(plan.template, state))
    if problems:
        _verification_failed(ctx, current, problems)
    arns = _layer_arns(plan.pinned, plan.layer_folders, state)
    layers = {
        plan.layer_folders[lid]: {"logical_id": lid, "arn": arn, "sha256": plan.layer_shas[plan.layer_folders[lid]]}
        for lid, arn in arns.items()
    }
    deployed = _deployed_template(ctx.session)
    release = _release(ctx, (current.number if current else 0) + 1, "deploy", state, layers, plan.parameters, deployed)
    unchanged = current is not None and (release.template_sha256, release.parameters) == (
        current.template_sha256,
        current.parameters,
    )
    if current is not None and unchanged and not differences(state, current):
        ctx.log.say(f"Nothing changed: stage {ctx.stage.name!r} stays on release {current.number}.")
        return current
    with ctx.log.step(f"record release {release.number}"):
        ctx.store.record(release, deployed, _build_report(ctx.paths))
    ctx.log.say(f"Stage {ctx.stage.name!r} is on release {release.number} (verified).")
    return release


# --- the commands ----------------------------------------------------------------------------


def _with_stage(
    root: Path,
    stage: Stage,
    command: str,
    gates: Callable[[DeployLog, Path], None],
    work: Callable[[StageContext], Release | None],
) -> Release | None:
    """Lock the stage, run the gates, reach the stage, do the work; everything logged."""
    paths = BuildPaths.of(root)
    log = DeployLog(paths.logs, command, stage.name)
    try:
        lock = paths.deploy_dir(stage.name).with_suffix(".lock")
        with stage_lock(lock, stage.name, f"inv {command} --stage {stage.name}"):
            sam = find_sam(root)  # before the gates: a missing tool is refused at once
            gates(log, sam)
            session, caller, store = _open_stage(root, stage, log)
            return work(StageContext(root, stage, paths, log, session, caller, store, sam))
    except (ClientError, BotoCoreError) as exc:
        log.event("failed", error=str(exc))
        raise DeployFailed(
            f"`inv {command} --stage {stage.name}` stopped: an AWS call failed: {exc}\n"
            f"Check the stage with `inv releases --stage {stage.name}`; see the log for each step."
        ) from None
    except BaseException as exc:
        log.event("failed", error=str(exc) or type(exc).__name__)
        raise
    finally:
        log.say(f"Log: {log.path}")
        log.close()


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
    confirm = _confirm_policy(stage, request.yes, request.interactive, request.dry_run)
    refuse_unrouted_alarms(stage)

    def work(ctx: StageContext) -> Release | None:
        history = ctx.store.releases()
        current = history[-1] if history else None
        with ctx.log.step("deploy template"):
            plan = plan_deploy(ctx)
        try:
            return _execute_and_record(ctx, plan, current, confirm, request.dry_run)
        except KeyboardInterrupt:
            # From sam deploy to the record, CloudFormation may go on without us.
            _recover_from_interrupt(ctx, current)
            raise

    return _with_stage(request.root, stage, "deploy", lambda log, sam: deploy_gates(request.root, log, sam), work)


def rollback(request: RollbackRequest) -> Release:
    """Return the stage to release `to` (default: the one before the current), verified and recorded."""
    stage = load_stage(request.root, request.stage)
    confirm = _confirm_policy(stage, request.yes, request.interactive, False)

    def work(ctx: StageContext) -> Release:
        history = ctx.store.releases()
        if not history:
            raise ReleaseError(f"Stage {stage.name!r} has no releases yet; there is nothing to roll back to.")
        current = history[-1]
        number = request.to if request.to is not None else current.number - 1
        if number < 1:
            raise ReleaseError(
                f"Stage {stage.name!r} is on its first release ({current.number}); there is none before it."
            )
        target = ctx.store.get(number, history)
        ctx.log.say(f"Rolling stage {stage.name!r} back from release {current.number} to release {target.number}.")
        release = _redeploy_release(ctx, target, "rollback", f"inv rollback --to {target.number}", confirm)
        ctx.log.say(
            f"Stage {stage.name!r} is on release {release.number}: "
            f"release {target.number}'s code and layers (verified)."
        )
        return release

    result = _with_stage(request.root, stage, "rollback", lambda log, sam: None, work)
    assert result is not None
    return result


def release_store(root: Path, stage_name: str) -> ReleaseStore:
    """The stage's release history, to read (no lock, no gates; the local stage's emulator must run)."""
    stage = load_stage(root, stage_name)
    paths = BuildPaths.of(root)
    endpoint = emulator_endpoint(paths, start=False, say=print) if stage.emulated else None
    session = StageSession(stage, endpoint)
    session.caller()
    return ReleaseStore(session, paths.releases(stage.name))


def releases(root: Path, stage_name: str) -> list[Release]:
    """The stage's release history (read-only: no lock, no gates)."""
    return release_store(root, stage_name).releases()
