"""Strip symbols from shared objects, then prove each still loads; restore any that does not.

For the layer's target architecture: its binutils strip and an interpreter of the runtime's version
for that architecture (core/toolchains.py: native, or under qemu for arm64 on x86_64). Without
either, nothing is stripped and the step says which tool is missing and why.

Every ELF shared object is stripped, those with an RPATH or RUNPATH (edited by patchelf:
auditwheel, delocate) included: almost all of them strip and load fine. The exception is
what `strip` corrupts ("ELF load command address/offset not page-aligned": scipy's bundled
OpenBLAS, with GNU strip and llvm-strip alike), which the load check catches and restores.
"""

from __future__ import annotations

import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core.command_runner import call
from ..core.errors import LayerToolError, VerifyError
from ..core.layer_tree import StepResult, walk_files
from ..core.toolchains import Toolchain
from .elf_needed import SHT_SYMTAB, section_kinds
from .target_imports import run_each

NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")
# How the step names a library it restored; checks/zip_binaries.py reads these notes back.
KEPT_UNSTRIPPED = "kept unstripped "
NOT_STRIPPED = "not stripped: "  # gates.py reads the cause back from this warning
# e_machine values of the ELF header, by the machine names wheels and Lambda use.
ELF_MACHINES = {62: "x86_64", 183: "aarch64", 3: "i386", 40: "arm"}


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


def elf_machine(path: Path) -> str:
    """The machine an ELF file is built for (its e_machine), e.g. x86_64 or aarch64."""
    with path.open("rb") as handle:
        header = handle.read(20)
    (number,) = struct.unpack_from("<H" if header[5] == 1 else ">H", header, 18)
    return ELF_MACHINES.get(number, f"e_machine {number}")


def has_symbol_table(path: Path) -> bool:
    """True while the file keeps its .symtab, the section `strip --strip-unneeded` removes."""
    try:
        return SHT_SYMTAB in section_kinds(path.read_bytes())
    except ValueError:  # 32-bit, big-endian, no section headers: nothing this step strips
        return False


@dataclass(frozen=True)
class ForeignObject:
    rel: str
    machine: str  # what it is built for

    def __str__(self) -> str:
        return f"{self.rel} ({self.machine})"


def foreign_objects(site: Path, machine: str) -> list[ForeignObject]:
    """Shared objects of the layer built for another machine than the target's (shown as
    `rel (machine)`): the one test of it, for the build and for the published zips."""
    objects = [(rel, site / rel) for rel, _ in walk_files(site) if is_shared_object(rel)]
    return [
        ForeignObject(rel, found) for rel, path in objects if is_elf(path) and (found := elf_machine(path)) != machine
    ]


def check_target_machine(site: Path, toolchain: Toolchain, layer: str) -> None:
    """A wheel for the wrong machine (a mislabelled tag, a vendored binary) would only fail on Lambda."""
    foreign = foreign_objects(site, toolchain.machine)
    if foreign:
        shown = "\n".join(f"    {entry}" for entry in foreign[:10])
        more = f"\n    ... and {len(foreign) - 10} more" if len(foreign) > 10 else ""
        raise VerifyError(
            f"Layer {layer} is for {toolchain.arch} ({toolchain.machine}), but {len(foreign)} of its shared "
            f"objects are built for another machine, so it was not written:\n{shown}{more}\n"
            f"  Fix: find the package that ships them (the path names it) and pin a release whose "
            f"{toolchain.machine} wheel is built for {toolchain.machine}, or exclude the package from the layer."
        )


def strip_shared_objects(site: Path, toolchain: Toolchain) -> StepResult:
    """Strip what is safe to strip and keep only what still loads, with the target's own tools."""
    if toolchain.strip is None or toolchain.python is None or shutil.which("readelf") is None:
        missing = toolchain.missing or ("needs binutils (strip, readelf) and the target interpreter",)
        return StepResult("shared-objects", warnings=tuple(NOT_STRIPPED + why for why in missing))
    strip, python = toolchain.strip, toolchain.python
    candidates = [site / rel for rel, _ in walk_files(site) if is_shared_object(rel)]
    to_strip = [p for p in candidates if is_elf(p)]
    before = {p: p.stat().st_size for p in to_strip}
    with tempfile.TemporaryDirectory(prefix="so-backup-") as backup_dir:
        backups = {p: Path(backup_dir) / str(index) for index, p in enumerate(to_strip)}
        for path, backup in backups.items():
            shutil.copy2(path, backup)
        failures = _strip_and_load(to_strip, strip, python, Path(backup_dir))
        for path in failures:
            shutil.copy2(backups[path], path)
        # A library fails to load when one it needs (from the same layer) broke, though it would
        # strip fine itself: each is tried again alone, next to the restored originals.
        retried = []
        for path in sorted(failures):
            if _strip_and_load([path], strip, python, Path(backup_dir)):
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
        f"{KEPT_UNSTRIPPED}{p.relative_to(site)} ({before[p] / 1e6:.1f} MB): "
        + (
            f"it does not load as installed either: {never[p]}"
            if p in never
            else f"it no longer loaded once stripped: {msg}"
        ).replace(f"{site}/", "")
        for p, msg in sorted(failures.items())
    )
    return StepResult("shared-objects", bytes_removed=saved, notes=(note, *restored))


def _strip_and_load(paths: list[Path], strip: str, python: str, workdir: Path) -> dict[Path, str]:
    """Strip each of `paths` in place and load them in the target interpreter: path -> why it
    failed (strip refused it, or it no longer loads). The caller restores those."""
    failures: dict[Path, str] = {}
    for path in paths:
        # error=None: a library strip refuses is restored by the caller and named in the notes.
        stripped = call([strip, "--strip-unneeded", str(path)], error=None)
        if stripped.returncode != 0:
            failures[path] = f"strip failed (exit {stripped.returncode}): {stripped.tail(2)}"
    failures.update(_load([p for p in paths if p not in failures], python, workdir))
    return failures


def _load(paths: list[Path], python: str, workdir: Path) -> dict[Path, str]:
    loaded = run_each(python, "load-library", [str(p) for p in paths], workdir)
    return {Path(path): error for path, error in loaded.items() if error is not None}
