"""After a failed or interrupted change: verify the stage and bring it back to a recorded release."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..core.errors import DeployFailed, ReleaseError, VerificationFailed
from .deploy_template import pin_layers, write_template
from .deployed_state import (
    ALIAS,
    StackState,
    check_stack,
    deployed_ok,
    explain_events,
    failure_events,
    read_stack,
    stack_status,
)
from .layer_versions import missing_versions
from .live_config import SETTINGS, IntendedFunction, intended_functions
from .release_history import Release
from .release_records import deployed_template, differences, new_release
from .sam_cli import deploy_command, run_deploy
from .smoke import smoke_run
from .stage_context import StageContext

SETTLE_SECONDS = 1800


def verify(
    ctx: StageContext, expected: Callable[[StackState], dict[str, IntendedFunction]], source: str, says: str
) -> tuple[StackState, list[str], list[str]]:
    """The stage as deployed, every problem with it, and what could not be compared: each live
    version's code, layers and configuration against `source` (what `expected` says), the state
    machine, then (only when those hold) a smoke run of each function."""
    state = read_stack(ctx.session)
    problems, notes = check_stack(state, expected(state), says)
    ctx.log.say(
        f"    compared each function's {ALIAS!r} version with {source}: code digest, layers, "
        f"{', '.join(SETTINGS[:-1])} and the function's reserved concurrency"
    )
    for note in notes:
        ctx.log.say(f"    NOT VERIFIED: {note}")
    problems = problems or smoke_run(ctx.session, [state.functions[f] for f in sorted(state.functions)])
    return state, problems, notes


def not_compared(notes: list[str]) -> str:
    """What a "verified" message must add when some values could not be compared."""
    return f"; {len(notes)} value(s) not compared, listed above" if notes else ""


def deploy_failed(
    ctx: StageContext, current: Release | None, status: str | None, returncode: int, tail: str, started: float
) -> None:
    events = failure_events(ctx.session, started)
    ctx.log.event("stack_events", events=events, status=status, sam_exit=returncode)
    cause = explain_events(events) if events else f"sam deploy exited {returncode}:\n{tail}"
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
    restored = redeploy_release(ctx, current, "restore", f"after a failed deploy: {'; '.join(problems)}")
    return (
        f"Stage {ctx.stage.name!r} was restored to release {current.number}'s code and layers "
        f"(recorded as release {restored.number})."
    )


def verification_failed(
    ctx: StageContext, current: Release | None, problems: list[str], change: str = "deploy"
) -> None:
    """The `change` (a deploy, a rollback) failed its checks: return the stage to `current`, record it."""
    listed = "\n".join(f"  - {p}" for p in problems)
    ctx.log.event("verification_failed", problems=problems)
    if current is None:
        raise VerificationFailed(
            f"The first deploy of stage {ctx.stage.name!r} did not pass its checks, and there is no earlier release "
            f"to return to:\n{listed}\nFix the cause and deploy again."
        )
    # Said before the restore: if the restore fails too, its error must not hide these.
    ctx.log.say(f"Post-deploy checks failed:\n{listed}\nRestoring release {current.number}.")
    restored = redeploy_release(ctx, current, "restore", "after failed post-deploy checks: " + "; ".join(problems))
    raise VerificationFailed(
        f"The {change} of stage {ctx.stage.name!r} failed its post-deploy checks:\n{listed}\n"
        f"Rolled back to release {current.number} (verified; recorded as release {restored.number})."
    )


def recover_from_interrupt(ctx: StageContext, current: Release | None) -> None:
    """Ctrl-C or SIGTERM during sam deploy (of a deploy or a rollback) or its checks: CloudFormation
    goes on without us; wait for it, then make sure the stage ends on a recorded release."""
    ctx.log.say("Interrupted: waiting for CloudFormation to finish what it started (Ctrl-C again to stop waiting)...")
    try:
        status = _settle(ctx)
        state = read_stack(ctx.session)
        # The interrupted command may have recorded its release just before the Ctrl-C.
        latest = ctx.store.history().current or current
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


def redeploy_release(
    ctx: StageContext,
    target: Release,
    kind: str,
    note: str,
    confirm: bool = False,
    restore_to: Release | None = None,
) -> Release:
    """Deploy a recorded release again: its exact template and parameters, every layer pinned to
    the version ARN it recorded, so nothing is published but (maybe) function versions. With
    `restore_to`, failed checks return the stage to that release, as after a failed deploy."""
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
    if not deployed_ok(result.returncode, status):
        events = failure_events(ctx.session, started)
        ctx.log.event("stack_events", events=events, status=status, sam_exit=result.returncode)
        raise DeployFailed(
            f"Returning stage {ctx.stage.name!r} to release {target.number} failed (stack {status}):\n"
            + (explain_events(events) or result.tail())
        )
    recorded = {logical: list(function["layers"]) for logical, function in target.functions.items()}
    code = {logical: str(function.get("code_sha256", "")) for logical, function in target.functions.items()}

    def expected(state: StackState) -> dict[str, IntendedFunction]:
        resources = {logical_id: physical for logical_id, (_kind, physical) in state.resources.items()}
        return intended_functions(template, target.parameters, resources, recorded, code)

    with ctx.log.step(f"verify release {target.number}"):
        state, problems, _notes = verify(
            ctx,
            expected,
            f"release {target.number}'s recorded template, layers and code",
            f"release {target.number} says",
        )
    if problems and restore_to is not None:
        verification_failed(ctx, restore_to, problems, f"{kind} to release {target.number}")
    if problems:
        raise VerificationFailed(
            f"Stage {ctx.stage.name!r} was returned to release {target.number} but does not pass its checks:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    deployed = deployed_template(ctx.session)
    release = new_release(
        ctx,
        ctx.store.history().next_number,
        kind,
        state,
        dict(target.layers),
        dict(target.parameters),
        deployed,
        target.number,
        note,
    )
    with ctx.log.step(f"record release {release.number}"):
        return ctx.store.record(release, deployed, ctx.store.build_report(target), ctx.log.say)
