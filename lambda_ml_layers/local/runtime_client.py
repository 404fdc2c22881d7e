"""AWS's Runtime Interface Client (awslambdaric), installed for the sandbox's runtime.

Lambda's Python images run handlers through awslambdaric, which sits on sys.path after the
function and its layers (/var/runtime). The sandbox does the same: the hashed lock
requirements/lambda-runtime.txt is installed with pip --target for the target platform into a
folder under build/ named after the lock's digest, once, and never into a layer.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ..build.pip_runner import install_for_target
from ..config.locks import parse_lock
from ..core.errors import InstallError
from ..core.paths import BuildPaths
from ..core.runtimes import Runtime

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lambda-runtime.txt"


def lock_digest(lock_text: str) -> str:
    return hashlib.sha256(lock_text.encode()).hexdigest()[:16]


def runtime_client_dir(runtime: Runtime, arch: str, root: Path = ROOT, lock: Path = LOCK) -> Path:
    """The folder holding awslambdaric for this runtime, installed on first use."""
    try:
        text = lock.read_text(encoding="utf-8")
    except OSError as exc:
        raise InstallError(
            f"The sandbox runs handlers through awslambdaric, locked in {lock}, which cannot be read "
            f"({exc.strerror}).\n  Fix: restore it from git (`git checkout -- {lock.relative_to(root)}`) "
            f"or regenerate it with `nox -s lock_tooling`."
        ) from None
    paths = BuildPaths.of(root)
    target = paths.runtime_client(runtime.name, arch, lock_digest(text))
    if (target / "awslambdaric").is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Installed beside, then renamed: an interrupted install leaves no half folder that looks done,
    # and two sandboxes starting at once both end with one whole copy.
    scratch = Path(tempfile.mkdtemp(prefix=".installing-", dir=target.parent))
    try:
        packages = list(parse_lock(text, str(lock)).values())
        install_for_target(packages, scratch / "site-packages", runtime, arch, paths.pip_cache)
        try:
            os.rename(scratch / "site-packages", target)
        except OSError:
            if not (target / "awslambdaric").is_dir():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
