"""`inv rollback`: return a stage to an earlier release, verified and recorded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config.stages import load_stage
from ..core.errors import ReleaseError
from .release_history import Release
from .restore import move_stage, not_compared, release_target
from .stage_context import StageContext, confirm_policy, read_checked_history, with_stage


@dataclass(frozen=True)
class RollbackRequest:
    root: Path
    stage: str
    to: int | None = None  # default: the release before the current one
    yes: bool = False
    interactive: bool = False


def rollback(request: RollbackRequest) -> Release:
    """Return the stage to release `to` (default: the one before the current), verified and recorded."""
    stage = load_stage(request.root, request.stage)
    confirm = confirm_policy(stage, request.yes, request.interactive, False)

    def work(ctx: StageContext) -> Release:
        history = read_checked_history(ctx)
        current = history.current
        if current is None:
            raise ReleaseError(f"Stage {stage.name!r} has no releases yet; there is nothing to roll back to.")
        unknown = history.unknown_latest()
        if unknown is not None and request.to is None:
            raise ReleaseError(
                f"Stage {stage.name!r}: release {unknown.number} has no good record, so 'the release before the "
                f"current one' is unknown. Fix: name the release to return to, e.g. `inv rollback --stage "
                f"{stage.name} --to {current.number}` (see `inv releases --stage {stage.name}`)."
            )
        number = request.to if request.to is not None else current.number - 1
        if number < 1:
            raise ReleaseError(
                f"Stage {stage.name!r} is on its first release ({current.number}); there is none before it."
            )
        target = ctx.store.get(number, history)
        latest = unknown.number if unknown else current.number
        ctx.log.say(f"Rolling stage {stage.name!r} back from release {latest} to release {target.number}.")
        note = f"inv rollback --to {target.number}"
        release, notes = move_stage(ctx, release_target(ctx, target, "rollback", note), current, confirm)
        assert release is not None
        ctx.log.say(
            f"Stage {stage.name!r} is on release {release.number}: "
            f"release {target.number}'s code and layers (verified{not_compared(notes)})."
        )
        return release

    result = with_stage(request.root, stage, "rollback", lambda log, sam: None, work, start_emulator=False)
    assert result is not None
    return result
