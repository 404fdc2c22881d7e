"""Build step: share duplicate bundled libraries (library_sharing.py decides), then prove it.

Reads each `*.libs` library's facts with binutils (readelf, nm) and every shared object's
DT_NEEDED names, applies the plan (rename DT_NEEDED in place, delete the dropped copies),
then loads, in the target interpreter, every shared object that loads a kept library
directly or through another. If any fails to load, every file is put back as it was and the
step warns: a layer is never shipped with a sharing that was not proven.

Then byte-identical copies of one shared object under several names (pyarrow's
libarrow_python.so, .so.2600, .so.2600.1.0): the names nothing can look for are deleted
(library_sharing.plan_identical says which stay), proven and undone the same way.

Why not symlinks: AWS documents no symlink support for layer archives, SAM CLI flattens or
follows them (aws-sam-cli #477, #878), and Python's zipfile extracts a link as a small text
file, so every tool that lays a layer out (verify, sandbox, layer tests) would need to know.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ..core.command_runner import call
from ..core.errors import VerifyError
from ..core.layer_tree import StepResult, walk_files
from .elf_needed import needed_names, rename_needed
from .library_sharing import (
    Library,
    SharingPlan,
    glibc_version,
    has_extension_tag,
    identical_groups,
    identical_note,
    plan_identical,
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


def soname_of(path: Path) -> str | None:
    return next(
        (line.split("[", 1)[1].rstrip("]") for line in _readelf(path, "-d").splitlines() if "(SONAME)" in line),
        None,
    )


def exports_py_init(path: Path) -> bool:
    """Python imports `name.so` (no ABI tag) as module `name` only if it exports PyInit_name."""
    wanted = "PyInit_" + path.name.split(".", 1)[0]
    symbols = binutils("nm", "-D", "--defined-only", str(path)).splitlines()
    return any(line.split()[-1] == wanted for line in symbols if line.split())


def library_facts(site: Path, rel: str) -> Library:
    """One bundled library, measured: SONAME, DT_NEEDED, exported symbol versions, glibc needed."""
    path = site / rel
    data = path.read_bytes()
    soname = soname_of(path) or path.name
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


# Each shared object's DT_NEEDED names, and the shared objects whose names could not be read.
Needed = tuple[dict[str, tuple[str, ...]], list[str]]


def needed_by_file(site: Path, shared_objects: list[str]) -> Needed:
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


def _apply(site: Path, plan: SharingPlan) -> None:
    """Rename DT_NEEDED entries and delete the copies."""
    for share in plan.shares:
        for rel in share.rewrites:
            path = site / rel
            path.write_bytes(rename_needed(path.read_bytes(), share.dropped.soname, share.kept.soname))
    for share in plan.shares:
        (site / share.dropped.rel).unlink()


def _restore(site: Path, touched: list[str], backup: Path) -> None:
    """Put back every file backed up (all of them, unless backing up itself failed part way)."""
    for index, rel in enumerate(touched):
        if (backup / str(index)).exists():
            shutil.copy2(backup / str(index), site / rel)


def prove_or_undo(
    site: Path, python: str, touched: list[str], edit: Callable[[], None], users: list[str]
) -> str | None:
    """Back up `touched`, run `edit`, then load every one of `users` in the target interpreter. None
    when all load; otherwise every touched file is put back as it was and the reason is returned."""
    with tempfile.TemporaryDirectory(prefix="share-libraries-") as backup_dir:
        backup = Path(backup_dir)
        try:
            for index, rel in enumerate(touched):
                shutil.copy2(site / rel, backup / str(index))
            edit()
            loaded = run_each(python, "load-library", [str(site / rel) for rel in users], backup)
        except ValueError as exc:  # elf_needed refused an edit: change nothing rather than part
            _restore(site, touched, backup)
            return str(exc)
        except BaseException:
            _restore(site, touched, backup)  # Ctrl-C or a failure mid-way: nothing unproven stays
            raise
        failures = {path: error for path, error in loaded.items() if error is not None}
        if failures:
            _restore(site, touched, backup)
            first, error = sorted(failures.items())[0]
            return (
                f"put back as they were: {len(failures)} of {len(users)} users failed to load, "
                f"first {Path(first).relative_to(site)}: {error}"
            )
    return None


def share_duplicate_libraries(site: Path, python: str | None, arch: str, target_glibc: tuple[int, int]) -> StepResult:
    """Share what library_sharing.py allows (keeping it only if every user of a kept copy loads), then
    remove the byte-identical copies of a shared object that nothing can be looking for."""
    step, needed = _share(site, python, arch, target_glibc)
    identical = _remove_identical(site, python, needed)
    notes = step.notes if step.notes != (NOTHING_SHARED,) or not identical.notes else ()
    return StepResult(
        STEP,
        files_removed=step.files_removed + identical.files_removed,
        bytes_removed=step.bytes_removed + identical.bytes_removed,
        notes=(*notes, *identical.notes),
        warnings=(*step.warnings, *identical.warnings),
    )


def names_in_sources(site: Path, names: set[str]) -> frozenset[str]:
    """Which of `names` appear as a whole file name in some .py file of the layer (a package that
    dlopens a library by name: ctypes.CDLL("libfoo.so")). Whole: "libfoo.so.1" does not count as
    naming "libfoo.so". The whole layer is searched, not one package: that can only keep more."""
    patterns = {name: re.compile(rb"(?<![\w.-])" + re.escape(name.encode()) + rb"(?![\w.-])") for name in names}
    found: set[str] = set()
    for rel, _ in walk_files(site):
        if not rel.endswith(".py") or len(found) == len(patterns):
            continue
        text = (site / rel).read_bytes()
        found |= {name for name, pattern in patterns.items() if name not in found and pattern.search(text)}
    return frozenset(found)


def _remove_identical(site: Path, python: str | None, measured: Needed | None) -> StepResult:
    """`measured`: the DT_NEEDED names as _share left the layer (None: it had no interpreter or
    binutils to read them with)."""
    groups = identical_groups(shared_object_digests(site))
    if not groups:
        return StepResult(STEP)
    if python is None or measured is None:
        # _share has already said what is missing; the copies are only listed
        why = "nothing could be loaded to prove it"
        return StepResult(STEP, notes=tuple(identical_note(names, size, why) for names, size in groups))
    needed, unreadable = measured
    if unreadable:
        why = f"the DT_NEEDED of {', '.join(unreadable[:3])} could not be read, so a user may be missed"
        return StepResult(STEP, notes=tuple(identical_note(names, size, why) for names, size in groups))
    candidates = [rel for names, _ in groups for rel in names]
    plans = plan_identical(
        groups,
        {names: soname_of(site / names[0]) for names, _ in groups},
        frozenset(PurePosixPath(name).name for names in needed.values() for name in names),
        frozenset(rel for rel in candidates if has_extension_tag(rel) or exports_py_init(site / rel)),
        names_in_sources(site, {PurePosixPath(rel).name for rel in candidates}),
    )
    dropped = sorted(rel for plan in plans for rel in plan.dropped)
    if not dropped:
        return StepResult(STEP, notes=tuple(plan.note() for plan in plans))
    kept = {rel for plan in plans if plan.dropped for rel, _ in plan.kept}
    remaining = {rel: names for rel, names in needed.items() if rel not in dropped}
    users = sorted(kept | set(users_of(kept, remaining)))

    def remove() -> None:
        for rel in dropped:
            (site / rel).unlink()

    failed = prove_or_undo(site, python, dropped, remove, users)
    if failed is not None:
        left = tuple(identical_note(plan.names, plan.size, "their removal was undone") for plan in plans)
        return StepResult(STEP, notes=left, warnings=(f"identical copies not removed: {failed}",))
    proof = (
        f"{len(users)} shared objects (the kept identical copies and all that load them) loaded in the target "
        "interpreter"
    )
    return StepResult(
        STEP,
        files_removed=len(dropped),
        bytes_removed=sum(len(plan.dropped) * plan.size for plan in plans),
        notes=(*(plan.note() for plan in plans), proof),
    )


def shared_object_digests(site: Path) -> dict[str, tuple[int, str]]:
    """rel -> (size, sha256) of each shared object whose size another one has (only those are hashed)."""
    sizes = {rel: size for rel, size in walk_files(site) if is_shared_object(rel)}
    common = {size for size, count in Counter(sizes.values()).items() if count > 1}
    return {
        rel: (size, hashlib.sha256((site / rel).read_bytes()).hexdigest())
        for rel, size in sizes.items()
        if size in common
    }


def _share(
    site: Path, python: str | None, arch: str, target_glibc: tuple[int, int]
) -> tuple[StepResult, Needed | None]:
    """What sharing did, and each shared object's DT_NEEDED names as the layer now stands (read
    once here, for _remove_identical too; None without an interpreter or binutils)."""
    if python is None:  # core/toolchains.py names what is missing for this arch (the strip step says it)
        return StepResult(STEP, notes=(f"duplicate libraries not looked at: no {arch} interpreter to load them",)), None
    if shutil.which("readelf") is None or shutil.which("nm") is None:
        return StepResult(STEP, warnings=("duplicate libraries not shared: needs binutils (readelf, nm)",)), None
    plan, needed, unreadable = measure(site, target_glibc)
    if not plan.shares:
        return StepResult(STEP, notes=plan.refusals or (NOTHING_SHARED,)), (needed, unreadable)
    if unreadable:
        why = f"not shared: the DT_NEEDED of {', '.join(unreadable[:3])} could not be read, so a user may be missed"
        return StepResult(STEP, notes=plan.refusals, warnings=(why,)), (needed, unreadable)
    kept = {share.kept.rel for share in plan.shares}
    after = needed_after(plan, needed)
    users = sorted(kept | set(users_of(kept, after)))
    failed = prove_or_undo(site, python, _touched(plan), lambda: _apply(site, plan), users)
    if failed is not None:  # every file put back: the names are as first read
        warning = f"duplicate libraries not shared: {failed}"
        return StepResult(STEP, notes=plan.refusals, warnings=(warning,)), (needed, unreadable)
    notes = tuple(share.describe() for share in plan.shares)
    proof = f"{len(users)} shared objects (the kept libraries and all that load them) loaded in the target interpreter"
    result = StepResult(
        STEP,
        files_removed=len(plan.shares),
        bytes_removed=plan.bytes_saved,
        notes=(*notes, proof, *plan.refusals),
    )
    return result, (after, unreadable)
