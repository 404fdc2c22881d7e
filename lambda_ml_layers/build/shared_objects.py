"""Strip symbols from shared objects, then prove each still loads; restore any that does not.

Libraries carrying an RPATH or RUNPATH were edited by patchelf (auditwheel, delocate) and
`strip` can corrupt them ("ELF load command address/offset not properly aligned"), so they
are left alone. Every stripped library is then loaded by the target interpreter.
"""

from __future__ import annotations

import platform
import re
import shutil
import tempfile
from pathlib import Path

from ..core.command_runner import call
from ..core.errors import LayerToolError
from ..core.layer_tree import StepResult, walk_files
from ..core.runtimes import ARCHES
from .target_imports import run_each

NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")


def is_shared_object(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name.endswith(".so") or ".so." in name


def has_rpath(path: Path) -> bool:
    """True also when readelf cannot read it: what cannot be inspected is not stripped."""
    result = call(["readelf", "-d", str(path)], error=None)
    return result.returncode != 0 or "(RPATH)" in result.output or "(RUNPATH)" in result.output


def needed_libraries(path: Path, error: type[LayerToolError] = LayerToolError) -> tuple[str, ...]:
    """The sonames a shared object links to (its DT_NEEDED entries, in its own order)."""
    result = call(["readelf", "-d", str(path)], error=error, what=f"reading the dynamic section of {path}")
    return tuple(NEEDED.findall(result.output))


def strip_shared_objects(site: Path, python: str | None, arch: str) -> StepResult:
    """Strip what is safe to strip and keep only what still loads. `python` None: cannot verify."""
    host = platform.machine()
    if ARCHES[arch] != host:
        return StepResult(
            "shared-objects",
            warnings=(
                f"not stripped: target arch {arch} differs from this {host} machine, so a "
                f"stripped library could not be loaded to verify it",
            ),
        )
    if python is None or shutil.which("strip") is None or shutil.which("readelf") is None:
        return StepResult(
            "shared-objects", warnings=("not stripped: needs binutils (strip, readelf) and the target interpreter",)
        )
    candidates = [site / rel for rel, _ in walk_files(site) if is_shared_object(rel)]
    skipped = [p for p in candidates if has_rpath(p)]
    to_strip = [p for p in candidates if p not in set(skipped)]
    before = {p: p.stat().st_size for p in to_strip}
    with tempfile.TemporaryDirectory(prefix="so-backup-") as backup_dir:
        backups = {}
        failures: dict[Path, str] = {}
        for index, path in enumerate(to_strip):
            backup = Path(backup_dir) / str(index)
            shutil.copy2(path, backup)
            backups[path] = backup
            # error=None: a library strip refuses is restored below and named in the step's notes.
            stripped = call(["strip", "--strip-unneeded", str(path)], error=None)
            if stripped.returncode != 0:
                failures[path] = f"strip failed (exit {stripped.returncode}): {stripped.tail(2)}"
        loaded = run_each(python, "load-library", [str(p) for p in to_strip if p not in failures], Path(backup_dir))
        failures.update({Path(path): error for path, error in loaded.items() if error is not None})
        for path in failures:
            shutil.copy2(backups[path], path)
    saved = sum(before[p] - p.stat().st_size for p in to_strip)
    note = f"{len(to_strip) - len(failures)} stripped, {len(skipped)} left alone (RPATH/RUNPATH, or unreadable)"
    restored = tuple(f"restored {p.relative_to(site)}: {msg}" for p, msg in sorted(failures.items()))
    return StepResult("shared-objects", bytes_removed=saved, notes=(note,), warnings=restored)
