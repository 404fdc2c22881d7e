"""Build step: share duplicate bundled libraries (library_sharing.py decides), then prove it.

Reads each `*.libs` library's facts with binutils (readelf, nm) and every shared object's
DT_NEEDED names, applies the plan (rename DT_NEEDED in place, delete the dropped copies),
then loads, in the target interpreter, every shared object that loads a kept library
directly or through another. If any fails to load, every file is put back as it was and the
step warns: a layer is never shipped with a sharing that was not proven.

Why not symlinks: AWS documents no symlink support for layer archives, SAM CLI flattens or
follows them (aws-sam-cli #477, #878), and Python's zipfile extracts a link as a small text
file, so every tool that lays a layer out (verify, sandbox, layer tests) would need to know.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from ..core.command_runner import call
from ..core.errors import VerifyError
from ..core.layer_tree import StepResult, walk_files
from .elf_needed import needed_names, rename_needed
from .library_sharing import (
    Library,
    SharingPlan,
    glibc_version,
    identical_groups,
    identical_note,
    plan_sharing,
    users_of,
)
from .shared_objects import is_shared_object
from .target_imports import run_each

STEP = "share-libraries"
NOTHING_SHARED = "no duplicate bundled libraries"


def is_bundled(rel: str) -> bool:
    """A library auditwheel bundled: in a `<package>.libs` folder (numpy.libs, scipy.libs)."""
    parts = rel.split("/")
    return len(parts) >= 2 and parts[-2].endswith(".libs") and is_shared_object(rel)


def binutils(*command: str) -> str:
    """The whole stdout of readelf or nm (the streaming runner keeps only the last lines, and a
    library's symbol list is longer than that)."""
    return call(list(command), error=VerifyError, split_stderr=True).stdout


def _readelf(path: Path, option: str) -> str:
    return binutils("readelf", option, "-W", str(path))


def library_facts(site: Path, rel: str) -> Library:
    """One bundled library, measured: SONAME, DT_NEEDED, exported symbol versions, glibc needed."""
    path = site / rel
    data = path.read_bytes()
    soname = next(
        (line.split("[", 1)[1].rstrip("]") for line in _readelf(path, "-d").splitlines() if "(SONAME)" in line),
        path.name,
    )
    versions = _readelf(path, "-V").split("Version needs section", 1)
    needs = versions[1] if len(versions) == 2 else ""
    glibc = [v for v in (glibc_version(word) for word in needs.split()) if v is not None]
    symbols = binutils("nm", "-D", "--defined-only", str(path)).splitlines()
    defined = frozenset(line.split()[-1].replace("@@", "@") for line in symbols if len(line.split()) == 3)
    return Library(
        rel=rel,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        soname=soname,
        needed=tuple(needed_names(data)),
        defined=defined,
        glibc=max(glibc, default=(0, 0)),
    )


def needed_by_file(site: Path, shared_objects: list[str]) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """Each shared object's DT_NEEDED names; and the ones that could not be read."""
    needed: dict[str, tuple[str, ...]] = {}
    unreadable = []
    for rel in shared_objects:
        try:
            needed[rel] = tuple(needed_names((site / rel).read_bytes()))
        except (ValueError, IndexError):  # not ELF64 LE, or truncated: its dependencies are unknown
            unreadable.append(rel)
    return needed, unreadable


def measure(site: Path, target_glibc: tuple[int, int]) -> tuple[SharingPlan, dict[str, tuple[str, ...]], list[str]]:
    shared_objects = [rel for rel, _ in walk_files(site) if is_shared_object(rel)]
    needed, unreadable = needed_by_file(site, shared_objects)
    libraries = [library_facts(site, rel) for rel in shared_objects if is_bundled(rel) and rel in needed]
    return plan_sharing(libraries, needed, target_glibc), needed, unreadable


def needed_after(plan: SharingPlan, needed: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Each remaining shared object's DT_NEEDED names once the plan is applied."""
    renamed = {share.dropped.soname: share.kept.soname for share in plan.shares}
    dropped = {share.dropped.rel for share in plan.shares}
    return {rel: tuple(renamed.get(n, n) for n in names) for rel, names in needed.items() if rel not in dropped}


def _touched(plan: SharingPlan) -> list[str]:
    return sorted({rel for share in plan.shares for rel in (share.dropped.rel, *share.rewrites)})


def _apply(site: Path, plan: SharingPlan, backup: Path) -> None:
    """Back up every file the plan touches, then rename DT_NEEDED entries and delete the copies."""
    for index, rel in enumerate(_touched(plan)):
        shutil.copy2(site / rel, backup / str(index))
    for share in plan.shares:
        for rel in share.rewrites:
            path = site / rel
            path.write_bytes(rename_needed(path.read_bytes(), share.dropped.soname, share.kept.soname))
    for share in plan.shares:
        (site / share.dropped.rel).unlink()


def _restore(site: Path, plan: SharingPlan, backup: Path) -> None:
    """Put back every file backed up (all of them, unless backing up itself failed part way)."""
    for index, rel in enumerate(_touched(plan)):
        if (backup / str(index)).exists():
            shutil.copy2(backup / str(index), site / rel)


def share_duplicate_libraries(site: Path, python: str | None, arch: str, target_glibc: tuple[int, int]) -> StepResult:
    """Share what library_sharing.py allows (keeping it only if every user of a kept copy loads), then
    name the byte-identical shared objects that are left, with their bytes."""
    step = _share(site, python, arch, target_glibc)
    identical = [identical_note(names, size) for names, size in identical_groups(shared_object_digests(site))]
    if identical and step.notes == (NOTHING_SHARED,):
        return dataclasses.replace(step, notes=tuple(identical))
    return dataclasses.replace(step, notes=(*step.notes, *identical))


def shared_object_digests(site: Path) -> dict[str, tuple[int, str]]:
    """rel -> (size, sha256) of each shared object whose size another one has (only those are hashed)."""
    sizes = {rel: size for rel, size in walk_files(site) if is_shared_object(rel)}
    common = {size for size, count in Counter(sizes.values()).items() if count > 1}
    return {
        rel: (size, hashlib.sha256((site / rel).read_bytes()).hexdigest())
        for rel, size in sizes.items()
        if size in common
    }


def _share(site: Path, python: str | None, arch: str, target_glibc: tuple[int, int]) -> StepResult:
    if python is None:  # core/toolchains.py names what is missing for this arch (the strip step says it)
        return StepResult(STEP, notes=(f"duplicate libraries not looked at: no {arch} interpreter to load them",))
    if shutil.which("readelf") is None or shutil.which("nm") is None:
        return StepResult(STEP, warnings=("duplicate libraries not shared: needs binutils (readelf, nm)",))
    plan, needed, unreadable = measure(site, target_glibc)
    if not plan.shares:
        return StepResult(STEP, notes=plan.refusals or (NOTHING_SHARED,))
    if unreadable:
        why = f"not shared: the DT_NEEDED of {', '.join(unreadable[:3])} could not be read, so a user may be missed"
        return StepResult(STEP, notes=plan.refusals, warnings=(why,))
    kept = {share.kept.rel for share in plan.shares}
    users = sorted(kept | set(users_of(kept, needed_after(plan, needed))))
    with tempfile.TemporaryDirectory(prefix="share-libraries-") as backup_dir:
        backup = Path(backup_dir)
        try:
            _apply(site, plan, backup)
            loaded = run_each(python, "load-library", [str(site / rel) for rel in users], backup)
        except ValueError as exc:  # elf_needed refused an edit: share nothing rather than part
            _restore(site, plan, backup)
            return StepResult(STEP, notes=plan.refusals, warnings=(f"duplicate libraries not shared: {exc}",))
        except BaseException:
            _restore(site, plan, backup)  # Ctrl-C or a failure mid-way: nothing unproven stays
            raise
        failures = {path: error for path, error in loaded.items() if error is not None}
        if failures:
            _restore(site, plan, backup)
            first, error = sorted(failures.items())[0]
            return StepResult(
                STEP,
                notes=plan.refusals,
                warnings=(
                    f"duplicate libraries not shared (put back as they were): {len(failures)} of {len(users)} "
                    f"users failed to load, first {Path(first).relative_to(site)}: {error}",
                ),
            )
    notes = tuple(share.describe() for share in plan.shares)
    proof = f"{len(users)} shared objects (the kept libraries and all that load them) loaded in the target interpreter"
    return StepResult(
        STEP,
        files_removed=len(plan.shares),
        bytes_removed=plan.bytes_saved,
        notes=(*notes, proof, *plan.refusals),
    )
