"""One command's hold on one stage: the lock, the gates, credentials, history and log."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from ..config.stages import Stage
from ..core.errors import DeployFailed, DeployGateError, ReleaseError, VerificationFailed
from ..core.paths import BuildPaths
from .deploy_log import DeployLog
from .deployed_state import read_stack, stack_status
from .drift import drift_message
from .local_emulator import dead_emulator, emulator_endpoint
from .release_history import History, Release
from .releases import ReleaseStore
from .sam_cli import find_sam
from .stage_lock import refuse_if_in_progress, stage_lock
from .stage_session import Caller, StageSession


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


def open_stage(
    root: Path, stage: Stage, log: DeployLog, command: str, start: bool
) -> tuple[StageSession, Caller, ReleaseStore]:
    """Reach the stage (`start`: an emulated stage's emulator is started when none runs)."""
    paths = BuildPaths.of(root)
    needed_by = f"`inv {command} --stage {stage.name}`"
    endpoint = emulator_endpoint(paths, start=start, say=log.say, needed_by=needed_by) if stage.emulated else None
    session = StageSession(stage, endpoint)
    with log.step(f"credentials and region for stage {stage.name}"):
        caller = session.caller()
        where = f"the local emulator at {endpoint}" if endpoint else f"account {caller.account}, {stage.region}"
        log.say(f"    {where}, as {caller.arn}")
        refuse_if_in_progress(stack_status(session), stage.name, stage.stack_name)
    return session, caller, ReleaseStore(session, paths.releases(stage.name))


def read_checked_history(ctx: StageContext) -> History:
    """The stage's history, each bad or missing record, and what runs if that is not what the
    latest record says, said out loud before anything changes."""
    history = ctx.store.history()
    for problem in history.problems():
        ctx.log.say(f"Warning: {problem}")
    drifted = drift_message(ctx.stage.name, read_stack(ctx.session), history)
    if drifted:
        ctx.log.event("drift", message=drifted)
        ctx.log.say(f"Warning: {drifted}")
    return history


def confirm_policy(stage: Stage, yes: bool, interactive: bool, dry_run: bool) -> bool:
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


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (how CI cancels a job) raises KeyboardInterrupt for the block, so it gets Ctrl-C's
    recovery and exit code instead of killing the command between sam deploy and the record."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can set a handler
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def with_stage(
    root: Path,
    stage: Stage,
    command: str,
    gates: Callable[[DeployLog, Path], None],
    work: Callable[[StageContext], Release | None],
    start_emulator: bool = True,
) -> Release | None:
    """Lock the stage, run the gates, reach the stage, do the work; everything logged. Only a
    command that can start a stage from nothing (a deploy) starts an emulated stage's emulator:
    any other would find a new, empty one and miss that the stage died with the old."""
    paths = BuildPaths.of(root)
    with sigterm_as_interrupt():
        log = DeployLog(paths.logs, command, stage.name)
        session: StageSession | None = None
        try:
            lock = paths.deploy_dir(stage.name).with_suffix(".lock")
            with stage_lock(lock, stage.name, f"inv {command} --stage {stage.name}"):
                sam = find_sam(root)  # before the gates: a missing tool is refused at once
                gates(log, sam)
                session, caller, store = open_stage(root, stage, log, command, start_emulator)
                with store.lease(f"inv {command} --stage {stage.name}", caller.arn):
                    return work(StageContext(root, stage, paths, log, session, caller, store, sam))
        except (ClientError, BotoCoreError, DeployFailed, VerificationFailed, ReleaseError) as exc:
            # A dead or paused emulator shows up as any of these; say so instead of blaming the deploy.
            endpoint = session.endpoint_url if session is not None else None
            if (died := dead_emulator(paths, endpoint, f"inv {command} --stage {stage.name}")) is not None:
                log.event("failed", error=str(died))
                raise died from None
            if not isinstance(exc, (ClientError, BotoCoreError)):
                log.event("failed", error=str(exc) or type(exc).__name__)
                raise
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
