"""What a layer's files are and who owns them: the shared vocabulary of the build steps."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class StepResult:
    """What one build step did; the report is a fold over these."""

    step: str
    files_removed: int = 0
    bytes_removed: int = 0
    notes: tuple[str, ...] = ()
    # What the user must see, not just read in the report: a check that could not run, a change undone.
    warnings: tuple[str, ...] = ()
    by_rule: dict[str, tuple[int, int]] = field(default_factory=dict)  # rule -> (files, bytes)


def walk_files(root: Path) -> Iterator[tuple[str, int]]:
    """(posix path relative to root, size) for every file (links followed), in sorted order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            path = base / name
            if not path.is_file():  # a link to a file counts as that file, as zip tools store it
                continue
            yield path.relative_to(root).as_posix(), path.stat().st_size


def module_name(rel: str) -> str | None:
    """The import name of a file under a layer's python/ folder, or None if it is not a module."""
    parts = rel.split("/")
    if "__pycache__" in parts:
        return None
    stem, dot, suffix = parts[-1].partition(".")
    is_module = suffix in ("py", "pyc") or (suffix.endswith("so") and suffix.startswith(("cpython", "abi3", "so")))
    if not dot or not is_module:
        return None
    names = [*parts[:-1], *([] if stem == "__init__" else [stem])]
    if not names or not all(n.isidentifier() for n in names) or names[-1] in ("__main__", "conftest"):
        return None
    return ".".join(names)


def tree_size(root: Path) -> int:
    return sum(size for _, size in walk_files(root))


def remove_files(root: Path, relative_paths: list[str]) -> int:
    """Delete the files, then any directory left empty; return bytes freed."""
    freed = 0
    parents = set()
    for rel in relative_paths:
        path = root / rel
        freed += path.stat().st_size
        path.unlink()
        parents.add(path.parent)
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        current = parent
        while current != root and current.is_dir() and not any(current.iterdir()):
            current.rmdir()
            current = current.parent
    return freed


@dataclass(frozen=True)
class Distribution:
    name: str  # canonical
    version: str
    dist_info: str  # folder name relative to the layer's site root
    top_level: tuple[str, ...]  # importable top-level modules it installs
    files: tuple[str, ...]  # every file it installed, from RECORD


def read_distributions(site: Path) -> list[Distribution]:
    """Every installed distribution in `site`, from its RECORD (read before RECORD is stripped)."""
    dists = []
    for info in sorted(site.glob("*.dist-info")):
        metadata = (info / "METADATA").read_text(errors="replace")
        fields = dict(line.split(": ", 1) for line in metadata.splitlines()[:20] if ": " in line)
        record = info / "RECORD"
        files = []
        if record.exists():
            files = [row[0] for row in csv.reader(io.StringIO(record.read_text())) if row]
        top = sorted({_top_level_module(f) for f in files} - {""})
        dists.append(
            Distribution(
                name=canonicalize_name(fields.get("Name", info.name.split("-")[0])),
                version=fields.get("Version", ""),
                dist_info=info.name,
                top_level=tuple(top),
                files=tuple(files),
            )
        )
    return dists


def _top_level_module(record_path: str) -> str:
    """The module a RECORD entry makes importable at the top level, or '' for data/metadata."""
    first = record_path.split("/", 1)[0]
    if (
        first.startswith("..")
        or first.endswith((".dist-info", ".data", ".libs"))
        or first
        in (
            "bin",
            "__pycache__",
        )
    ):
        return ""
    if "/" in record_path:
        return first if first.isidentifier() else ""
    stem, _, suffix = first.partition(".")
    if suffix == "py" or (suffix.endswith("so") and stem.isidentifier()):
        return stem
    return ""


def owner_of_paths(dists: list[Distribution]) -> dict[str, str]:
    """First path component -> distribution name, to total sizes per package after stripping."""
    owners: dict[str, str] = {}
    for dist in dists:
        for path in dist.files:
            first = path.split("/", 1)[0]
            if first and not first.startswith(".."):
                owners.setdefault(first, dist.name)
    return owners


def size_by_package(site: Path, owners: dict[str, str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for rel, size in walk_files(site):
        owner = owners.get(rel.split("/", 1)[0], "(other)")
        sizes[owner] = sizes.get(owner, 0) + size
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))
