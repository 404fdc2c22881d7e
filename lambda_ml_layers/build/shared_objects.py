"""Strip symbols from shared objects, then prove each still loads; restore any that does not.

For the layer's target architecture: its binutils strip and an interpreter of the runtime's version
for that architecture (core/toolchains.py: native, or under qemu for arm64 on x86_64). Where no such
interpreter exists (arm64 Python 3.12), the load check is the target's own dynamic loader under qemu
(ldd -r's trace: map, find dependencies, bind every symbol), and a change passes when the object
still maps and reports nothing unbound that it did not report before: an extension module's Py*
symbols are unbound by nature (the interpreter provides them). Without strip or either check,
nothing is stripped and the step says which tool is missing and why.

Every ELF shared object is stripped, those with an RPATH or RUNPATH (edited by patchelf:
auditwheel, delocate) included: almost all of them strip and load fine. The exception is
what `strip` corrupts ("ELF load command address/offset not page-aligned": scipy's bundled
OpenBLAS, with GNU strip and llvm-strip alike), which the load check catches and restores.

Then every one that loads is re-laid out for 4 KiB pages (elf_layout.py: the 64 KiB padding of
manylinux aarch64 wheels removed, addresses and contents unchanged), under the same load check:
one that no longer loads re-laid out goes back to its stripped (or installed) form.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..core.command_runner import call
from ..core.errors import LayerToolError, VerifyError
from ..core.layer_tree import StepResult, walk_files
from ..core.toolchains import Toolchain
from .elf_layout import relayout
from .elf_needed import SHT_SYMTAB, section_kinds
from .target_imports import run_each

NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")
# How the step names a library it restored; checks/zip_binaries.py reads these notes back.
KEPT_UNSTRIPPED = "kept unstripped "
NOT_STRIPPED = "not stripped: "  # gates.py reads the cause back from this warning
KEPT_LAYOUT = "kept at its 64 KiB page layout "
# e_machine values of the ELF header, by the machine names wheels and Lambda use.
ELF_MACHINES = {62: "x86_64", 183: "aarch64", 3: "i386", 40: "arm"}
# A dependency the loader's trace could not find (it still exits 0: the caller must read this).
DEPENDENCY_NOT_FOUND = re.compile(r"^\s*(\S+) => not found", re.MULTILINE)
# What ldd -r sets: trace instead of run, bind every symbol now, report each it cannot bind.
TRACE_ENV = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_BIND_NOW": "1", "LD_WARN": "1"}
LOADER_TIMEOUT = 300  # seconds for one object under qemu; scipy's OpenBLAS takes about one


@dataclass(frozen=True)
class LoaderTrace:
    """What the target's dynamic loader said of one shared object."""

    returncode: int
    problems: frozenset[str]  # each unbound symbol, dependency not found, or the loader's error
    error: str  # its last lines of stderr, to show

    @classmethod
    def parse(cls, returncode: int, stdout: str, stderr: str) -> LoaderTrace:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        missing = {f"{name} => not found" for name in DEPENDENCY_NOT_FOUND.findall(stdout)}
        return cls(returncode, frozenset({*lines, *missing}), "; ".join(lines[-2:]))


def loader_regression(before: LoaderTrace, after: LoaderTrace) -> str | None:
    """Why a changed object is worse than it was, to its dynamic loader; None when it is not:
    it maps where it mapped, and reports no unbound symbol or missing dependency it did not."""
    if after.returncode != 0 and before.returncode == 0:
        return f"the dynamic loader no longer maps it (exit {after.returncode}): {after.error}"
    new = sorted(after.problems - before.problems)
    if not new:
        return None
    more = f" (and {len(new) - 3} more)" if len(new) > 3 else ""
    return f"the dynamic loader reports what it did not before: {'; '.join(new[:3])}{more}"


def loader_refusal(trace: LoaderTrace) -> str | None:
    """Why an object as it is does not load, to its dynamic loader (its unbound Py* symbols aside)."""
    missing = sorted(problem for problem in trace.problems if problem.endswith("=> not found"))
    if trace.returncode != 0:
        return f"the dynamic loader does not map it (exit {trace.returncode}): {trace.error}"
    return f"the dynamic loader does not find {', '.join(missing)}" if missing else None


# Paths to check, a scratch folder -> path -> why it fails (a path that passes is absent).
Load = Callable[[list[Path], Path], dict[Path, str]]


@dataclass(frozen=True)
class LoadCheck:
    """How the step proves what it changed still loads: `changed` since the check was made, and
    `as_installed`, to tell a change's failure from an object that never loaded here."""

    changed: Load
    as_installed: Load


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


def strip_shared_objects(site: Path, toolchain: Toolchain, relayout_pages: bool = True) -> StepResult:
    """Strip what is safe to strip and keep only what still loads, with the target's own tools; then
    (relayout_pages) remove the 64 KiB page padding from what loads re-laid out for 4 KiB pages."""
    checkable = toolchain.python is not None or bool(toolchain.loader)
    if toolchain.strip is None or not checkable or shutil.which("readelf") is None:
        missing = toolchain.missing or ("needs binutils (strip, readelf) and the target interpreter",)
        return StepResult("shared-objects", warnings=tuple(NOT_STRIPPED + why for why in missing))
    strip = toolchain.strip
    # The interpreter's check is the stronger (a real dlopen): the loader's only stands in for it.
    check = partial(python_check, toolchain.python) if toolchain.python else partial(loader_check, toolchain.loader)
    candidates = [site / rel for rel, _ in walk_files(site) if is_shared_object(rel)]
    to_strip = [p for p in candidates if is_elf(p)]
    before = {p: p.stat().st_size for p in to_strip}
    with tempfile.TemporaryDirectory(prefix="so-backup-") as backup_dir:
        failures, never = _change_keeping_loadable(to_strip, partial(_strip, strip), check, Path(backup_dir))
    stripped = {p: p.stat().st_size for p in to_strip}
    relaid: list[Path] = []
    relaid_failures: dict[Path, str] = {}
    if relayout_pages:
        # Restored originals too: scipy's OpenBLAS, which no strip leaves loadable, loads re-laid out.
        # Each new layout is computed once: a retry after a restore writes the same bytes again.
        layouts = {p: data for p in to_strip if p not in never and (data := relayout(p.read_bytes()).data)}
        relaid = list(layouts)
        with tempfile.TemporaryDirectory(prefix="so-relayout-") as backup_dir:
            relaid_failures, _ = _change_keeping_loadable(
                relaid, partial(_write_layout, layouts), check, Path(backup_dir)
            )
    saved = sum(before[p] - p.stat().st_size for p in to_strip)
    relaid_saved = sum(stripped[p] - p.stat().st_size for p in relaid)
    note = f"{len(to_strip) - len(failures)} stripped" + (
        f", {len(candidates) - len(to_strip)} not ELF (left alone)" if len(candidates) > len(to_strip) else ""
    )
    relaid_note = (
        f"{len(relaid) - len(relaid_failures)} re-laid out to 4 KiB pages, {relaid_saved / 1e6:.1f} MB"
        if relayout_pages
        else "not re-laid out to 4 KiB pages ([build] relayout_shared_objects = false)"
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
    kept_layout = tuple(
        f"{KEPT_LAYOUT}{p.relative_to(site)}: it no longer loaded re-laid out: {msg}".replace(f"{site}/", "")
        for p, msg in sorted(relaid_failures.items())
    )
    how = () if toolchain.python else (_loader_note(toolchain),)
    notes = (note, *how, *restored, relaid_note, *kept_layout)
    return StepResult("shared-objects", bytes_removed=saved, notes=notes)


def _loader_note(toolchain: Toolchain) -> str:
    sysroot = Path(toolchain.loader[-1]).parent.parent.name
    return (
        f"load-checked with the {toolchain.arch} dynamic loader ({sysroot} sysroot, under qemu) instead of an "
        f"interpreter (each still maps and binds what it did as installed); why, and what that leaves "
        f"unverified: " + "; ".join(toolchain.missing)
    )


def _strip(strip: str, path: Path) -> str | None:
    # error=None: a library strip refuses is restored by the caller and named in the notes.
    stripped = call([strip, "--strip-unneeded", str(path)], error=None)
    return None if stripped.returncode == 0 else f"strip failed (exit {stripped.returncode}): {stripped.tail(2)}"


def _write_layout(layouts: dict[Path, bytes], path: Path) -> None:
    path.write_bytes(layouts[path])


def _change_keeping_loadable(
    paths: list[Path],
    change: Callable[[Path], str | None],
    make_check: Callable[[list[Path]], LoadCheck],
    backup_dir: Path,
) -> tuple[dict[Path, str], dict[Path, str]]:
    """Apply `change` to each of `paths` in place (it returns why it could not, or None), then load
    them all (`make_check`, made before any change) and restore each that fails. Returns
    (path -> why it was restored, path -> why it does not load as it was either)."""
    check = make_check(paths)
    load = check.changed
    backups = {p: backup_dir / str(index) for index, p in enumerate(paths)}
    for path, backup in backups.items():
        shutil.copy2(path, backup)
    failures = _change_and_load(paths, change, load, backup_dir)
    for path in failures:
        shutil.copy2(backups[path], path)
    # A library fails to load when one it needs (from the same layer) broke, though it would
    # take the change fine itself: each is tried again alone, next to the restored originals.
    retried = []
    for path in sorted(failures):
        if _change_and_load([path], change, load, backup_dir):
            shutil.copy2(backups[path], path)  # at once: a later retry may need it
        else:
            retried.append(path)
    if retried:
        # They were loaded next to unchanged neighbours: prove the final set together.
        for path in retried:
            del failures[path]
        late = load([p for p in paths if p not in failures], backup_dir)
        for path, error in late.items():
            failures[path] = error
            shutil.copy2(backups[path], path)
    # What does not load as it was either (a plugin for a library Lambda lacks) was never the
    # change's doing: said so, rather than blamed on the change.
    never = check.as_installed(sorted(failures), backup_dir) if failures else {}
    return failures, never


def _change_and_load(
    paths: list[Path], change: Callable[[Path], str | None], load: Load, workdir: Path
) -> dict[Path, str]:
    """Change each of `paths` in place and `load` them: path -> why it failed (the change refused
    it, or it no longer loads). The caller restores those."""
    failures: dict[Path, str] = {}
    for path in paths:
        refused = change(path)
        if refused is not None:
            failures[path] = refused
    failures.update(load([p for p in paths if p not in failures], workdir))
    return failures


def python_check(python: str, paths: list[Path]) -> LoadCheck:
    """ctypes.CDLL each object in the target interpreter (a fresh one per crash)."""
    load = partial(_load, python)
    return LoadCheck(load, load)


def _load(python: str, paths: list[Path], workdir: Path) -> dict[Path, str]:
    loaded = run_each(python, "load-library", [str(p) for p in paths], workdir)
    return {Path(path): error for path, error in loaded.items() if error is not None}


def loader_check(loader: tuple[str, ...], paths: list[Path]) -> LoadCheck:
    """Trace each of `paths` with the target's dynamic loader now, as installed, and later judge
    each against that (loader_regression)."""
    before = {path: trace_with_loader(loader, path) for path in paths}

    def changed(changed_paths: list[Path], workdir: Path) -> dict[Path, str]:
        failed = {p: loader_regression(before[p], trace_with_loader(loader, p)) for p in changed_paths}
        return {p: why for p, why in failed.items() if why is not None}

    def as_installed(installed: list[Path], workdir: Path) -> dict[Path, str]:
        refused = {p: loader_refusal(trace_with_loader(loader, p)) for p in installed}
        return {p: why for p, why in refused.items() if why is not None}

    return LoadCheck(changed, as_installed)


def trace_with_loader(loader: tuple[str, ...], path: Path) -> LoaderTrace:
    """The loader's trace of one object, its dependencies found as ctypes.CDLL in the interpreter
    would find them (its RUNPATH, the sysroot's libraries; no LD_LIBRARY_PATH of the host's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    # error=None: a loader that refuses the object is this check's answer.
    result = call([*loader, str(path)], env={**env, **TRACE_ENV}, timeout=LOADER_TIMEOUT, split_stderr=True, error=None)
    if result.timed_out:
        return LoaderTrace(-1, frozenset({"hung"}), f"no answer within {LOADER_TIMEOUT}s")
    return LoaderTrace.parse(result.returncode, result.stdout, result.output)
