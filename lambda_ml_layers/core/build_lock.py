"""Lock files that keep two processes off one thing (a build folder, a stage): flock'ed, so a
killed owner never leaves one held, and holding one line that names the owner."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BuildInProgress, LayerToolError
from .paths import BuildPaths


@contextmanager
def exclusive(lock_path: Path, owner: str, refused: Callable[[str], LayerToolError]) -> Iterator[None]:
    """Hold `lock_path` while the block runs, with `owner` written in it; when someone else
    holds it, raise `refused(their owner line)`."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise refused(handle.read().strip()) from None
        handle.seek(0)
        handle.truncate()
        handle.write(owner)
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def exclusive_build(build_dir: Path) -> Iterator[None]:
    """One build at a time per build folder: two would share staging, cache and outputs."""

    def refused(owner: str) -> LayerToolError:
        return BuildInProgress(
            f"Another build is running in {build_dir} (pid {owner or 'unknown'}). Wait for it to finish, "
            f"or stop it; a build never shares its staging folder."
        )

    if on_read_only_file_system(build_dir):
        # Nothing can write here, so no other build can run here either. A build with nothing to
        # change still works; the first write it needs fails with a clear error naming the path.
        yield
        return
    with exclusive(BuildPaths(build_dir).lock_file, str(os.getpid()), refused):
        yield


def on_read_only_file_system(path: Path) -> bool:
    """True if `path` exists on a file system mounted read-only."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
