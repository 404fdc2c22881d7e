"""Real file-system faults for the fault-injection tests: read-only bind mounts and small tmpfs
disks (root ignores file modes, so these are the only honest read-only and full). Each test
module skips with `why_no_mounts()` where this machine cannot mount."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)  # busy: detach it anyway


@cache
def why_no_mounts() -> str | None:
    """None if this process can make bind mounts and tmpfs; otherwise why not."""
    if os.geteuid() != 0:
        return "needs root to mount a read-only bind mount or a small tmpfs"
    probe = Path(f"/tmp/fault-injection-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        made = _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe))
        if made.returncode != 0:
            return f"cannot mount here (no CAP_SYS_ADMIN?): {made.stderr.strip()}"
        _umount(probe)
        return None
    finally:
        probe.rmdir()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` read-only for everyone, root included, while the block runs."""
    made = _mount("--bind", str(path), str(path))
    assert made.returncode == 0, made.stderr
    try:
        remounted = _mount("-o", "remount,ro,bind", str(path))
        assert remounted.returncode == 0, remounted.stderr
        yield
    finally:
        _umount(path)


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[None]:
    """A tmpfs of `size` on `path` (emptied: it hides what was there) while the block runs."""
    path.mkdir(parents=True, exist_ok=True)
    made = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    assert made.returncode == 0, made.stderr
    try:
        yield
    finally:
        _umount(path)


def fill(folder: Path) -> None:
    """Write a filler file until the file system holding `folder` has no byte left."""
    with (folder / "filler").open("wb", buffering=0) as f:  # unbuffered: close has nothing left to write
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
