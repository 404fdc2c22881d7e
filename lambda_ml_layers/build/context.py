"""What every step of one build may read: the target, the tools, the locks, where to write,
where to report progress, and the flag that stops every layer when the build is cancelled."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..config.project import ProjectConfig
from ..core.errors import BuildInterrupted
from ..config.locks import LayerLock
from ..core.notices import Notice
from ..core.paths import BuildPaths
from ..core.progress import BuildProgress
from ..core.runtimes import Runtime


@dataclass
class BuildContext:
    project: ProjectConfig
    runtime: Runtime
    arch: str
    python: str
    interpreter_version: str
    locks: dict[str, LayerLock]
    paths: BuildPaths
    progress: BuildProgress
    force: bool
    find_links: Path | None
    cancel: threading.Event = field(default_factory=threading.Event)

    def say(self, notice: Notice) -> None:
        self.progress.emit(notice)

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise BuildInterrupted("Build interrupted.")
