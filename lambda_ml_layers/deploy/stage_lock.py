"""One deploy or rollback of a stage at a time.

On this machine a lock file (build/deploy/<stage>.lock, flock'ed, so a killed deploy never
leaves it held) names the running command; across machines CloudFormation's own state does:
a stack that is *_IN_PROGRESS is being changed by someone, and the deploy is refused.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.build_lock import exclusive
from ..core.errors import LayerToolError, StageBusy


@contextmanager
def stage_lock(lock_path: Path, stage: str, command: str) -> Iterator[None]:
    def refused(text: str) -> LayerToolError:
        try:
            owner = json.loads(text or "{}")
        except json.JSONDecodeError:
            owner = {}
        return StageBusy(
            f"Stage {stage!r} is busy: `{owner.get('command', 'another deploy')}` (pid {owner.get('pid', '?')}, "
            f"started {owner.get('started', '?')}) is running. Wait for it to finish; two changes of one "
            "stage at once could leave it on neither release."
        )

    owner = {"command": command, "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with exclusive(lock_path, json.dumps(owner), refused):
        yield


def refuse_if_in_progress(status: str | None, stage: str, stack: str) -> None:
    if status and status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise StageBusy(
            f"Stack {stack} of stage {stage!r} is {status}: someone else is changing it. Wait until it ends "
            "(`aws cloudformation describe-stacks --stack-name " + stack + "`), then deploy again."
        )
