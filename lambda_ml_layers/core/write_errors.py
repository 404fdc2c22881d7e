"""OSErrors that mean the build cannot write where it must (a read-only tree, a full disk, no
permission), turned into one clear BuildWriteError naming the path and the fix.

A failed write() or close() raises an OSError that names no file, so the places that write
(zip, cache, publish, extraction) wrap their writes in `naming(path)` to attach one."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BuildWriteError

_KEPT = "the published layers and the reports are as the last good build left them"

# errno -> (what happened, the fix); the message starts with what happened, as the OS says it.
_WRITE_FAULTS = {
    errno.ENOSPC: (
        "No space left on device",
        "free space on that file system (old cache entries under build/cache/layers can go), then build again",
    ),
    errno.EDQUOT: ("Disk quota exceeded", "free space or raise the quota, then build again"),
    errno.EROFS: (
        "Read-only file system",
        "this build has to write there (a layer or report changed): make it writable, or build in a "
        "writable checkout; a build with nothing to change runs on a read-only tree",
    ),
    errno.EACCES: ("Permission denied", "give this user access (check its owner and mode), then build again"),
    errno.EPERM: ("Operation not permitted", "give this user access (check its owner and mode), then build again"),
}
# Only these can come from nothing but a write; a permission error may come from a read too.
_WRITE_ONLY = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def write_failure(exc: OSError) -> BuildWriteError | None:
    """The clear error for an OSError that is a write fault, or None for any other OSError."""
    fault = _WRITE_FAULTS.get(exc.errno or 0)
    if fault is None:
        return None
    what, fix = fault
    # shutil.copyfile names the source first and the destination second; the destination is at fault.
    path = exc.filename2 or exc.filename
    where = "" if not path else f" writing {path}" if exc.errno in _WRITE_ONLY else f": {path}"
    return BuildWriteError(f"{what}{where}. Nothing was published ({_KEPT}). Fix: {fix}.")


@contextmanager
def naming(path: Path, replace: bool = False) -> Iterator[None]:
    """Attach `path` to an OSError raised inside the block without a file name (or, with
    `replace`, instead of the one it has: a staged temporary name tells the user nothing)."""
    try:
        yield
    except OSError as exc:
        if replace or exc.filename is None:
            exc.filename, exc.filename2 = str(path), None
        raise
