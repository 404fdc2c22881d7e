"""Strip symbols from shared objects, then prove each still loads; restore any that does not.

Every ELF shared object is stripped, those with an RPATH or RUNPATH (edited by patchelf:
auditwheel, delocate) included: almost all of them strip and load fine. The exception is
what `strip` corrupts ("ELF load command address/offset not page-aligned": scipy's bundled
OpenBLAS, with GNU strip and llvm-strip alike), which the load check catches and restores.
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


def is_elf(path: Path) -> bool:
    """False for what only looks like a library (a linker script named .so): strip cannot read it."""
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


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
    to_strip = [p for p in candidates if is_elf(p)]
    before = {p: p.stat().st_size for p in to_strip}
    with tempfile.TemporaryDirectory(prefix="so-backup-") as backup_dir:
        backups = {p: Path(backup_dir) / str(index) for index, p in enumerate(to_strip)}
        for path, backup in backups.items():
            shutil.copy2(path, backup)
        failures = _strip_and_load(to_strip, python, Path(backup_dir))
        for path in failures:
            shutil.copy2(backups[path], path)
        # A library fails to load when one it needs (from the same layer) broke, though it would
        # strip fine itself: each is tried again alone, next to the restored originals.
        retried = []
        for path in sorted(failures):
            if _strip_and_load([path], python, Path(backup_dir)):
                shutil.copy2(backups[path], path)  # at once: a later retry may need it
            else:
                retried.append(path)
        if retried:
            # They were loaded next to unstripped neighbours: prove the final set together.
            for path in retried:
                del failures[path]
            late = _load([p for p in to_strip if p not in failures], python, Path(backup_dir))
            for path, error in late.items():
                failures[path] = error
                shutil.copy2(backups[path], path)
        # What does not load as installed either (a plugin for a library Lambda lacks) was never
        # the strip's doing: said so, rather than blamed on the strip.
        never = _load(sorted(failures), python, Path(backup_dir)) if failures else {}
    saved = sum(before[p] - p.stat().st_size for p in to_strip)
    note = f"{len(to_strip) - len(failures)} stripped" + (
        f", {len(candidates) - len(to_strip)} not ELF (left alone)" if len(candidates) > len(to_strip) else ""
    )
    # A restore is the safety net working (scipy's bundled OpenBLAS breaks under any strip), so
    # it is a note: the library ships as installed, and the layer is only that much larger.
    restored = tuple(
        f"kept unstripped {p.relative_to(site)} ({before[p] / 1e6:.1f} MB): "
        + (
            f"it does not load as installed either: {never[p]}"
            if p in never
            else f"it no longer loaded once stripped: {msg}"
        ).replace(f"{site}/", "")
        for p, msg in sorted(failures.items())
    )
    return StepResult("shared-objects", bytes_removed=saved, notes=(note, *restored))


def _strip_and_load(paths: list[Path], python: str, workdir: Path) -> dict[Path, str]:
    """Strip each of `paths` in place and load them in the target interpreter: path -> why it
    failed (strip refused it, or it no longer loads). The caller restores those."""
    failures: dict[Path, str] = {}
    for path in paths:
        # error=None: a library strip refuses is restored by the caller and named in the notes.
        stripped = call(["strip", "--strip-unneeded", str(path)], error=None)
        if stripped.returncode != 0:
            failures[path] = f"strip failed (exit {stripped.returncode}): {stripped.tail(2)}"
    failures.update(_load([p for p in paths if p not in failures], python, workdir))
    return failures


def _load(paths: list[Path], python: str, workdir: Path) -> dict[Path, str]:
    loaded = run_each(python, "load-library", [str(p) for p in paths], workdir)
    return {Path(path): error for path, error in loaded.items() if error is not None}
