"""Which files a layer's `[prune]` section removes: pure, so every rule is unit-tested.

Inside the packages that may be pruned, a module survives when the trace loaded it, a keep
prefix covers it, or it is the parent package of one that survives (its `__init__` runs first).
A data file follows its nearest package; a file the trace opened or loaded always survives,
and so does a shared library something surviving links to (DT_NEEDED, followed to a fixed point).
Everything outside those packages is never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from ...config.prune import PruneConfig, covers
from ...config.trace_manifest import Trace
from ...core.layer_tree import module_name
from ...core.runtimes import MB
from ..shared_objects import is_shared_object

SHOWN_FILES = 3  # files a prune note names for a part that stays


@dataclass(frozen=True)
class PrunePlan:
    removed: tuple[str, ...]  # paths under python/, sorted
    parts: dict[str, tuple[int, int]]  # pruned part ("scipy.io") -> (files, bytes)
    pruned_modules: tuple[str, ...]  # the top-most pruned modules (a pruned package stands for its subtree)
    kept_modules: tuple[str, ...]  # modules inside the packages that survive
    rescued: tuple[str, ...]  # shared libraries kept only because something kept links to them
    unmatched: tuple[str, ...]  # `packages` or `keep` entries that name nothing in the tree
    part_files: dict[str, tuple[str, ...]] = field(default_factory=dict)  # pruned part -> its removed files


def parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def package_of(rel: str, packages: Iterable[str]) -> str | None:
    """The `packages` entry a file lies in (the longest), or None."""
    module = module_name(rel)
    found = [p for p in packages if rel.startswith(p.replace(".", "/") + "/") or (module is not None and module == p)]
    return max(found, key=len) if found else None


def part_of(rel: str, package: str) -> str:
    """The reported part a removed file belongs to: its package entry plus one more level."""
    module = module_name(rel)
    parts = module.split(".") if module else rel.split("/")[:-1]
    return ".".join(parts[: package.count(".") + 2])


def _package_dirs(files: Iterable[str]) -> set[str]:
    return {rel.rsplit("/", 1)[0] for rel in files if "/" in rel and rel.rsplit("/", 1)[1].startswith("__init__.")}


def _kept_modules(modules: set[str], config: PruneConfig, trace: Trace) -> set[str]:
    wanted = {m for m in modules if covers(config.keep, m) or m in trace.modules}
    anchors = wanted | set(config.keep) | {m for m in trace.modules if covers(config.packages, m)}
    return wanted | {parent for anchor in anchors for parent in parents(anchor)}


def plan_prune(
    files: Mapping[str, int],
    config: PruneConfig,
    trace: Trace,
    needs: Mapping[str, tuple[str, ...]],
    protect: tuple[str, ...] = (),
) -> PrunePlan:
    """`files`: path under python/ -> size; `needs`: shared object path -> the sonames it links to."""
    inside = {rel: package for rel in files if (package := package_of(rel, config.packages))}
    modules = {rel: module_name(rel) for rel in inside}
    present = {m for m in modules.values() if m}
    # A namespace package (scipy._external: folders, no __init__) is named by its modules' parents.
    named = present | {parent for m in present for parent in parents(m)}
    kept = _kept_modules(present, config, trace)
    package_dirs = _package_dirs(inside)

    def survives(rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        if rel in trace.files or rel in trace.libraries or any(fnmatchcase(n, g) for n in (name, rel) for g in protect):
            return True
        module = modules[rel]
        if module:
            return module in kept
        folder = rel.split("/")[:-1]
        while folder:  # a data file lives and dies with its nearest package
            if "/".join(folder) in package_dirs:
                return ".".join(folder) in kept
            folder.pop()
        return True

    removed = {rel for rel in inside if not survives(rel)}
    rescued: set[str] = set()
    while True:
        linked = {so for rel, sonames in needs.items() if rel not in removed for so in sonames}
        linked |= {so for sonames in trace.libraries.values() for so in sonames}
        newly = {rel for rel in removed if is_shared_object(rel) and rel.rsplit("/", 1)[-1] in linked}
        if not newly:
            break
        removed -= newly
        rescued |= newly
    parts: dict[str, tuple[int, int]] = {}
    part_files: dict[str, list[str]] = {}
    for rel in sorted(removed):
        part = part_of(rel, inside[rel])
        count, size = parts.get(part, (0, 0))
        parts[part] = (count + 1, size + files[rel])
        part_files.setdefault(part, []).append(rel)
    pruned = {m for rel in removed if (m := modules[rel])}
    return PrunePlan(
        removed=tuple(sorted(removed)),
        parts=dict(sorted(parts.items(), key=lambda item: -item[1][1])),
        pruned_modules=tuple(sorted(m for m in pruned if not any(p in pruned for p in parents(m)))),
        kept_modules=tuple(sorted(present - pruned)),
        rescued=tuple(sorted(rescued)),
        unmatched=tuple(e for e in (*config.packages, *config.keep) if e not in named),
        part_files={part: tuple(rels) for part, rels in part_files.items()},
    )


def part_note(part: str, removed: tuple[str, ...], sizes: Mapping[str, int], pruned: tuple[str, ...]) -> str:
    """What went from one reported part (pure). A part that is itself a pruned module went whole; of a
    part that stays (sklearn.svm, when only its unused `_newrand` extension went) the files are named,
    so no note reads as if a package a function uses were gone."""
    size = sum(sizes[rel] for rel in removed)
    files = f"{len(removed)} file{'s' if len(removed) != 1 else ''}, {size / MB:.2f} MB"
    if covers(pruned, part):
        return f"{part} pruned ({files})"
    largest = sorted(removed, key=lambda rel: (-sizes[rel], rel))
    named = ", ".join(f"{rel} ({sizes[rel] / MB:.2f} MB)" for rel in largest[:SHOWN_FILES])
    more = f" and {len(removed) - SHOWN_FILES} more" if len(removed) > SHOWN_FILES else ""
    return f"{part} stays; {files} of it pruned: {named}{more}"


def modules_to_prove(plan: PrunePlan, config: PruneConfig, trace: Trace) -> list[str]:
    """What the build's verify imports besides the top-level modules: each keep entry and every
    traced module that survived (all imported fine in the traced runs)."""
    kept = set(plan.kept_modules)
    return sorted({m for m in (*config.keep, *trace.modules) if m in kept})
