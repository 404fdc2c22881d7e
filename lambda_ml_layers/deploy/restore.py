"""Move a stage from its recorded release to a target: the one procedure of deploy, rollback and
restore. sam deploy, verify, record; on a failed sam deploy or failed checks, and on Ctrl-C or
SIGTERM, the stage is brought back to the release it was on, and that is recorded too."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from .drift import drift
from .layer_versions import missing_versions
from .live_config import SETTINGS, IntendedFunction, intended_functions
from .release_history import Release
from .release_records import deployed_template, new_release
from .sam_cli import deploy_command, run_deploy
from .smoke import smoke_run
from .stage_context import StageContext

SETTLE_SECONDS = 1800


@dataclass(frozen=True)
class Target:
    """Where a command moves a stage: what sam deploy gets, what each live version must then run,
    and what the release that records it says."""

    kind: str  # "deploy", "rollback" or "restore": the record's kind
    name: str  # "the build", "release 3": for the step names and messages
    template_path: Path
    parameters: dict[str, str]
    expected: Callable[[StackState], dict[str, IntendedFunction]]
    source: str  # where `expected` comes from, for the verify line
    says: str  # how a difference names it: "template says", "release 3 says"
    layers: Callable[[StackState], dict[str, dict[str, str]]]  # the record's layers
    build_report: dict[str, Any] | None
    restores: int | None = None
    note: str = ""

    @property
    def change(self) -> str:
        """The change, as messages name it: "deploy", "rollback to release 3"."""
        return self.kind if self.kind == "deploy" else f"{self.kind} to {self.name}"


def verify(
    ctx: StageContext, expected: Callable[[StackState], dict[str, IntendedFunction]], source: str, says: str
) -> tuple[StackState, list[str], list[str]]:
    """The stage as deployed, every problem with it, and what could not be compared: each live
    version's code, layers and configuration against `source` (what `expected` says), the state
    machine, then (only when those hold) a smoke run of each function."""
    state = read_stack(ctx.session, concurrency=True)
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


def move_stage(
    ctx: StageContext, target: Target, current: Release | None, confirm: bool, execute: bool = True
) -> tuple[Release | None, list[str]]:
    """sam deploy of `target`, verify, record: the release the stage ends on (None after a dry run:
    the change set shown, nothing executed) and the values that could not be compared. A failure or
    an interrupt brings the stage back to `current` and records that; a restore itself, being that
    way back, only says what went wrong."""
    try:
        return _move(ctx, target, current, confirm, execute)
    except KeyboardInterrupt:
        if target.kind != "restore":  # a restore runs inside the recovery of the command that needed it
            # From sam deploy to the record, CloudFormation may go on without us.
            recover_from_interrupt(ctx, current)
        raise


def _move(
    ctx: StageContext, target: Target, current: Release | None, confirm: bool, execute: bool
) -> tuple[Release | None, list[str]]:
    started = time.time()
    command = deploy_command(ctx.sam, ctx.root, ctx.stage, target.template_path, target.parameters, confirm, execute)
    step = "sam deploy" if target.kind == "deploy" else f"sam deploy of {target.name}"
    with ctx.log.step(step):
        result = run_deploy(command, ctx.session.environment(), target.template_path.parent, ctx.log.output, confirm)
    if not execute:
        ctx.log.say("Dry run: the change set above was not executed; the stage is unchanged.")
        return None, []
    status = stack_status(ctx.session)
    if not deployed_ok(result.returncode, status):
        _deploy_failed(ctx, target, current, status, result.returncode, result.tail(), started)
    with ctx.log.step("verify the stage" if target.kind == "deploy" else f"verify {target.name}"):
        state, problems, notes = verify(ctx, target.expected, target.source, target.says)
    if problems:
        _verification_failed(ctx, target, current, problems)
    deployed = deployed_template(ctx.session)
    release = new_release(
        ctx,
        ctx.store.known_history().next_number,  # record() claims the number afresh
        target.kind,
        state,
        target.layers(state),
        dict(target.parameters),
        deployed,
        target.restores,
        target.note,
    )
    unchanged = current is not None and (release.template_sha256, release.parameters) == (
        current.template_sha256,
        current.parameters,
    )
    if target.kind == "deploy" and current is not None and unchanged and not drift(state, current):
        ctx.log.say(f"Nothing changed: stage {ctx.stage.name!r} stays on release {current.number}.")
        return current, notes
    with ctx.log.step(f"record release {release.number}"):
        return ctx.store.record(release, deployed, target.build_report, ctx.log.say), notes


def _deploy_failed(
    ctx: StageContext,
    target: Target,
    current: Release | None,
    status: str | None,
    returncode: int,
    tail: str,
    started: float,
) -> None:
    events = failure_events(ctx.session, started)
    ctx.log.event("stack_events", events=events, status=status, sam_exit=returncode)
    cause = explain_events(events) if events else f"sam deploy exited {returncode}:\n{tail}"
    stack = f"stack {status or 'not created'}"
    if target.kind == "restore":
        raise DeployFailed(f"Returning stage {ctx.stage.name!r} to {target.name} failed ({stack}):\n{cause}")
    where = _where_is_stage(ctx, current, read_stack(ctx.session), status)
    raise DeployFailed(f"The {target.change} of stage {ctx.stage.name!r} failed ({stack}):\n{cause}\n{where}")


def _where_is_stage(ctx: StageContext, current: Release | None, state: StackState, status: str | None) -> str:
    """Make sure the stage is back on `current` (restore it if CloudFormation left it elsewhere); say so."""
    if current is None:
        return (
            f"Stage {ctx.stage.name!r} has no earlier release to return to (stack {status or 'not created'}). "
            "Fix the cause and deploy again."
        )
    problems = drift(state, current)
    if not problems:
        return (
            f"Stage {ctx.stage.name!r} is still on release {current.number} "
            "(checked: every live alias runs its code and layers)."
        )
    ctx.log.say(f"The stage is not on release {current.number} ({'; '.join(problems)}); restoring it.")
    restored = redeploy_release(ctx, current, "restore", f"after a failed change: {'; '.join(problems)}")
    return (
        f"Stage {ctx.stage.name!r} was restored to release {current.number}'s code and layers "
        f"(recorded as release {restored.number})."
    )


def _verification_failed(ctx: StageContext, target: Target, current: Release | None, problems: list[str]) -> None:
    """The change failed its checks: return the stage to `current`, record it (a restore only says so)."""
    listed = "\n".join(f"  - {p}" for p in problems)
    ctx.log.event("verification_failed", problems=problems)
    if target.kind == "restore":
        raise VerificationFailed(
            f"Stage {ctx.stage.name!r} was returned to {target.name} but does not pass its checks:\n{listed}"
        )
    if current is None:
        raise VerificationFailed(
            f"The first deploy of stage {ctx.stage.name!r} did not pass its checks, and there is no earlier release "
            f"to return to:\n{listed}\nFix the cause and deploy again."
        )
    # Said before the restore: if the restore fails too, its error must not hide these.
    ctx.log.say(f"Post-deploy checks failed:\n{listed}\nRestoring release {current.number}.")
    restored = redeploy_release(ctx, current, "restore", "after failed post-deploy checks: " + "; ".join(problems))
    raise VerificationFailed(
        f"The {target.change} of stage {ctx.stage.name!r} failed its post-deploy checks:\n{listed}\n"
        f"Rolled back to release {current.number} (verified; recorded as release {restored.number})."
    )


def recover_from_interrupt(ctx: StageContext, current: Release | None) -> None:
    """Ctrl-C or SIGTERM during sam deploy (of a deploy or a rollback) or its checks: CloudFormation
    goes on without us; wait for it, then make sure the stage ends on a recorded release."""
    ctx.log.say(
        "Interrupted: waiting for CloudFormation to finish what it started (Ctrl-C or SIGTERM again to stop waiting)..."
    )
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


def release_target(ctx: StageContext, target: Release, kind: str, note: str) -> Target:
    """A recorded release as a target: its exact template and parameters, every layer pinned to the
    version ARN it recorded, so nothing is published but (maybe) function versions."""
    missing = missing_versions(ctx.session.client("lambda"), [layer["arn"] for layer in target.layers.values()])
    if missing:
        raise ReleaseError(
            f"Release {target.number} uses layer versions that no longer exist: {', '.join(missing)}. "
            "It cannot be restored exactly; deploy a fixed build instead."
        )
    template = ctx.store.template(target)
    pinned = {layer["logical_id"]: layer["arn"] for layer in target.layers.values()}
    work = ctx.paths.deploy_dir(ctx.stage.name)
    template_path = write_template(pin_layers(template, pinned), work / f"release-{target.number}.json")
    recorded = {logical: list(function["layers"]) for logical, function in target.functions.items()}
    code = {logical: str(function.get("code_sha256", "")) for logical, function in target.functions.items()}

    def expected(state: StackState) -> dict[str, IntendedFunction]:
        resources = {logical_id: physical for logical_id, (_kind, physical) in state.resources.items()}
        return intended_functions(template, target.parameters, resources, recorded, code)

    return Target(
        kind=kind,
        name=f"release {target.number}",
        template_path=template_path,
        parameters=dict(target.parameters),
        expected=expected,
        source=f"release {target.number}'s recorded template, layers and code",
        says=f"release {target.number} says",
        layers=lambda _state: dict(target.layers),
        build_report=ctx.store.build_report(target),
        restores=target.number,
        note=note,
    )


def redeploy_release(ctx: StageContext, target: Release, kind: str, note: str) -> Release:
    """Put the stage back on a recorded release (a restore: a failure is only reported)."""
    release, _notes = move_stage(ctx, release_target(ctx, target, kind, note), None, False)
    assert release is not None
    return release
