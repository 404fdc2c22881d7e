"""What every step of one build may read: the target, the tools, the locks, where to write,
where to report progress, and the flag that stops every layer when the build is cancelled."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..config.locks import LayerLock
from ..config.project import ProjectConfig
from ..core.errors import BuildInterrupted
from ..core.notices import Notice
from ..core.paths import BuildPaths
from ..core.progress import BuildProgress
from ..core.runtimes import Runtime
from ..core.toolchains import Toolchain


@dataclass
class BuildContext:
    project: ProjectConfig
    runtime: Runtime
    arch: str
    python: str  # the host's interpreter of the runtime's version: bytecode, pruning's host-side checks
    interpreter_version: str
    locks: dict[str, LayerLock]
    paths: BuildPaths
    progress: BuildProgress
    force: bool
    find_links: Path | None
    toolchain: Toolchain  # the target's strip and interpreter (native, or under qemu)
    cancel: threading.Event = field(default_factory=threading.Event)

    def say(self, notice: Notice) -> None:
        self.progress.emit(notice)

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise BuildInterrupted("Build interrupted.")
