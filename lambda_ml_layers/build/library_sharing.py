"""Which bundled shared libraries of a layer are the same library twice, and which copy to keep.

auditwheel gives every library it bundles a name with a hash of its bytes
(`libgfortran-83c28eba.so.5.0.0`), and a library bundled by a wheel that was itself bundled
into another gets a second hash (`libgfortran-040039e1-0352e75f.so.5.0.0`). Two such copies
with one name under the hashes are one library when one of them can serve everyone the other
serves. That is decided here from facts only (no file is read): a copy is kept if it

- exports every symbol, at every symbol version, that each other copy exports (so whatever
  was linked against the other finds what it imports: the loader checks exactly these), and
- needs no newer glibc than the runtime's Amazon Linux has;

the copies it replaces are dropped, and everything that named them in DT_NEEDED is pointed at
the kept one. Only copies in one folder are shared: dependents find bundled libraries through
their own RPATH, which names that folder. The kept name is written in place of the old one,
so it must be no longer (elf_needed.py). The build step (shared_libraries.py) proves the
result by loading every dependent, and undoes it if any fails.

Byte-identical copies under other names (no auditwheel hash; pyarrow's libarrow_python.so and
.so.2600) need no rename: only the names nothing looks for go (`plan_identical`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

# auditwheel's hash: 8 hex digits after a dash, before the next dash or the first dot.
_WHEEL_HASH = re.compile(r"-[0-9a-f]{8}(?=[-.])")


@dataclass(frozen=True)
class Library:
    """A shared library bundled in a `*.libs` folder, as the build measured it."""

    rel: str  # posix path relative to the layer's python/ folder
    size: int
    sha256: str
    soname: str
    needed: tuple[str, ...]
    defined: frozenset[str]  # exported symbols as "name@VERSION" ("name" when unversioned)
    glibc: tuple[int, int]  # the newest GLIBC_x.y symbol version it needs; (0, 0) for none

    @property
    def folder(self) -> str:
        return str(PurePosixPath(self.rel).parent)

    @property
    def identity(self) -> str:
        """The library's own name, without the hashes auditwheel added: libgfortran.so.5.0.0."""
        return _WHEEL_HASH.sub("", self.soname)


@dataclass(frozen=True)
class Share:
    """`dropped` is deleted; each file in `rewrites` has its DT_NEEDED on it renamed to `kept`."""

    kept: Library
    dropped: Library
    rewrites: tuple[str, ...]

    def describe(self) -> str:
        users = ", ".join(self.rewrites) or "nothing else (it was needed only by another dropped copy)"
        how = "identical bytes" if self.kept.sha256 == self.dropped.sha256 else "exports every symbol version it does"
        return (
            f"shared {self.kept.identity}: kept {self.kept.rel}, dropped {self.dropped.rel} "
            f"({self.dropped.size:,} bytes; the kept copy {how}); DT_NEEDED renamed in {users}"
        )


@dataclass(frozen=True)
class SharingPlan:
    shares: tuple[Share, ...]
    refusals: tuple[str, ...]  # duplicates left alone, each with why

    @property
    def bytes_saved(self) -> int:
        return sum(share.dropped.size for share in self.shares)


def glibc_version(name: str) -> tuple[int, int] | None:
    """(2, 27) for "GLIBC_2.27"; None for any other version name."""
    match = re.fullmatch(r"GLIBC_(\d+)\.(\d+)", name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def serves(kept: Library, other: Library, target_glibc: tuple[int, int]) -> bool:
    return other.defined <= kept.defined and kept.glibc <= target_glibc


def _why_not(group: list[Library], target_glibc: tuple[int, int]) -> str:
    reasons = []
    for library in group:
        missing = sorted(set().union(*(other.defined - library.defined for other in group)))
        if missing:
            reasons.append(f"{library.rel} lacks {len(missing)} exported symbol(s) of the others, e.g. {missing[0]}")
        if library.glibc > target_glibc:
            needs = ".".join(map(str, library.glibc))
            have = ".".join(map(str, target_glibc))
            reasons.append(f"{library.rel} needs glibc {needs}, the runtime has {have}")
    return "; ".join(reasons)


def _dependents(name: str, needed_by: dict[str, tuple[str, ...]], dropped: set[str]) -> tuple[str, ...]:
    return tuple(sorted(rel for rel, needed in needed_by.items() if name in needed and rel not in dropped))


def plan_sharing(
    libraries: list[Library], needed_by: dict[str, tuple[str, ...]], target_glibc: tuple[int, int]
) -> SharingPlan:
    """`needed_by`: every shared object of the layer (bundled libraries and extension modules
    alike) -> its DT_NEEDED names."""
    groups: dict[tuple[str, str], list[Library]] = {}
    for library in sorted(libraries, key=lambda lib: lib.rel):
        groups.setdefault((library.folder, library.identity), []).append(library)
    chosen: list[tuple[Library, Library]] = []
    refusals = []
    for (_folder, identity), group in sorted(groups.items()):
        if len(group) < 2:
            continue
        # Of the copies that can serve all the others, keep the smallest: it saves the most.
        candidates = sorted(
            (lib for lib in group if all(serves(lib, other, target_glibc) for other in group)),
            key=lambda lib: (lib.size, lib.rel),
        )
        names = ", ".join(lib.rel for lib in group)
        if not candidates:
            refusals.append(f"not shared {identity} ({names}): {_why_not(group, target_glibc)}")
            continue
        fitting = [lib for lib in candidates if all(len(lib.soname) <= len(other.soname) for other in group)]
        if not fitting:
            refusals.append(
                f"not shared {identity} ({names}): the kept name {candidates[0].soname} is longer than a name "
                f"it would replace, so it cannot be written in place"
            )
            continue
        chosen += [(fitting[0], other) for other in group if other is not fitting[0]]
    dropped = {other.rel for _, other in chosen}
    shares = tuple(
        Share(kept, other, _dependents(other.soname, needed_by, dropped))
        for kept, other in sorted(chosen, key=lambda pair: pair[1].rel)
    )
    return SharingPlan(shares, tuple(refusals))


def users_of(kept: set[str], needed_by: dict[str, tuple[str, ...]]) -> list[str]:
    """Every shared object that loads one of the `kept` libraries (paths), directly or through
    another: what must be loaded to prove the sharing. A bundled library is needed by its file
    name (auditwheel names the file after the SONAME)."""
    wanted = {PurePosixPath(rel).name for rel in kept}
    users: set[str] = set()
    while True:
        more = {rel for rel, needed in needed_by.items() if rel not in users and wanted.intersection(needed)}
        if not more:
            return sorted(users)
        users |= more
        wanted |= {PurePosixPath(rel).name for rel in more}


def identical_groups(files: dict[str, tuple[int, str]]) -> list[tuple[tuple[str, ...], int]]:
    """Shared objects with the same bytes under different names (`files`: rel -> (size, sha256)),
    as (names sorted, size of one), largest waste first (pure). pyarrow's wheel carries
    libarrow_python.so, .so.N and .so.N.0.0 as three files where a build tree has one and two links."""
    groups: dict[tuple[int, str], list[str]] = {}
    for rel, key in files.items():
        groups.setdefault(key, []).append(rel)
    found = [(tuple(sorted(names)), size) for (size, _), names in groups.items() if len(names) > 1 and size > 0]
    return sorted(found, key=lambda group: (-(len(group[0]) - 1) * group[1], group[0]))


# A Python extension module's file name carries its ABI tag: `_lib.cpython-312-x86_64-linux-gnu.so`, `x.abi3.so`.
_EXTENSION_TAG = re.compile(r"\.(cpython-[^.]+|abi3|pypy[^.]*)\.so$")


def has_extension_tag(rel: str) -> bool:
    return _EXTENSION_TAG.search(rel) is not None


@dataclass(frozen=True)
class IdenticalGroup:
    """Byte-identical shared objects, and which names must stay, each with why (the rest may go)."""

    names: tuple[str, ...]  # sorted rels
    size: int  # of one copy
    kept: tuple[tuple[str, str], ...]  # (rel, why it must stay)

    @property
    def dropped(self) -> tuple[str, ...]:
        """Nothing when no name is known to be used: then which one is loaded is unknown, so all stay."""
        if not self.kept:
            return ()
        kept = {rel for rel, _ in self.kept}
        return tuple(rel for rel in self.names if rel not in kept)

    def note(self) -> str:
        if self.dropped:
            kept = "; ".join(f"{rel} ({why})" for rel, why in self.kept)
            return (
                f"identical bytes: removed {', '.join(self.dropped)} ({self.size:,} bytes each, "
                f"{len(self.dropped) * self.size:,} bytes in all); kept {kept}"
            )
        if self.kept:
            why = "every name is in use: " + "; ".join(f"{rel} ({reason})" for rel, reason in self.kept)
        else:
            why = (
                "none of the names is in a DT_NEEDED, the SONAME, an extension module or named in the .py "
                "sources, so which one is loaded is unknown"
            )
        return identical_note(self.names, self.size, why)


def plan_identical(
    groups: list[tuple[tuple[str, ...], int]],
    sonames: dict[tuple[str, ...], str | None],
    needed: frozenset[str],
    extensions: frozenset[str],
    in_sources: frozenset[str],
) -> tuple[IdenticalGroup, ...]:
    """Which names of each identical group stay (pure). A name stays if the loader may look for it
    (some ELF file's DT_NEEDED names it, or it is the SONAME), Python may import it (`extensions`:
    rels of extension modules), or the package may dlopen it by name (`in_sources`: basenames found
    as strings in the .py files, e.g. ctypes.CDLL("libfoo.so")). Files in other folders that share a
    name stay too: the rule is on names, not on which folder a loader searches."""
    plans = []
    for names, size in groups:
        soname = sonames.get(names)
        kept = []
        for rel in names:
            name = PurePosixPath(rel).name
            reasons = [
                why
                for why, applies in (
                    ("in a DT_NEEDED", name in needed),
                    ("its SONAME", name == soname),
                    ("an extension module", rel in extensions),
                    ("named in the .py sources", name in in_sources),
                )
                if applies
            ]
            if reasons:
                kept.append((rel, ", ".join(reasons)))
        plans.append(IdenticalGroup(names, size, tuple(kept)))
    return tuple(plans)


def identical_note(names: tuple[str, ...], size: int, why: str) -> str:
    """Byte-identical copies that all stay, with what they cost and why they stay."""
    extra = (len(names) - 1) * size
    return (
        f"identical bytes, kept as {len(names)} files: {', '.join(names)} ({size:,} bytes each; {extra:,} bytes in "
        f"the extra copies). Not shared: {why}."
    )
