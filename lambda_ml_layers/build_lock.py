"""The lock file that guards a build folder (BuildPaths.lock_file, holding the owner's pid)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BuildInProgress
from .paths import BuildPaths


@contextmanager
def exclusive_build(build_dir: Path) -> Iterator[None]:
    """One build at a time per build folder: two would share staging, cache and outputs."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with BuildPaths(build_dir).lock_file.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise BuildInProgress(
                f"Another build is running in {build_dir} (pid {owner}). Wait for it to finish, "
                f"or stop it; a build never shares its staging folder."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
