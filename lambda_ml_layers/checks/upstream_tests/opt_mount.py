"""Run the stripped tree at /opt, where Lambda mounts layers, in a private mount namespace.

The layers' bytecode is compiled for /opt/python: its code objects name their files there.
Tests that compare a module's `__file__` with those names (pandas' warning stack levels,
numpy's `suppress_warnings`) fail for that reason alone when the tree sits in a scratch
folder, so the stripped run bind-mounts the tree over /opt in a mount namespace of its own
(`unshare --mount`): nothing outside that process sees it. Where namespaces are not
allowed (no root, a locked-down container) the tree runs where it is, and the report says so.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

from ...core.command_runner import call

LAMBDA_OPT = Path("/opt")
_BIND_AND_RUN = 'mount --bind "$0" /opt && exec "$@"'


@cache
def can_mount_opt() -> bool:
    """Whether this process may make a private mount namespace and bind-mount in it (probed once)."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" "$0"', "/tmp"]
    return call(probe, error=None).returncode == 0  # a refusal is the answer, not an error


def at_opt(opt: Path) -> list[str]:
    """A command prefix that runs the rest with `opt` mounted at /opt (for that process only)."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _BIND_AND_RUN, str(opt)]
