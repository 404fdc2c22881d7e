"""What is big inside each package of a built layer, for the picture: from the zip's file list,
each top-level package split into its subpackages, bundled libraries (scipy.libs' OpenBLAS,
pyarrow's libarrow), extension modules and data files. Pure: (path, size) pairs in, data out."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..build.library_sharing import has_extension_tag

KINDS = ("code", "extension", "library", "data", "metadata")
KIND_NAMES = {
    "code": "Python code",
    "extension": "extension modules",
    "library": "bundled libraries",
    "data": "data files",
    "metadata": "package metadata",
}
_SITE = re.compile(r"^python/(lib/python3\.\d+/site-packages/)?")
_SHARED = re.compile(r"\.so(\.\d+)*$")
# Parts smaller than this share of their layer are drawn together, so the picture stays readable.
SMALL_SHARE = 0.002


def kind_of(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if ".dist-info/" in path or ".egg-info/" in path:
        return "metadata"
    if _SHARED.search(name):
        tagged = has_extension_tag(name)  # else a library some extension loads
        return "library" if ".libs/" in path or (not tagged and name.startswith("lib")) else "extension"
    if name.endswith((".py", ".pyc")):
        return "code"
    return "data"


def _group_and_part(path: str, kind: str) -> tuple[str, str]:
    """(group, part): the group is the top-level package (`scipy.libs` goes with `scipy`); the part
    is a subpackage (`scipy/stats`), one bundled library file, or the package's own top files."""
    parts = path.split("/")
    top = parts[0]
    if kind == "metadata":
        return "(package metadata)", "*.dist-info"
    group = top.removesuffix(".libs")
    if kind == "library":
        return group, path
    if len(parts) == 1:
        return group.removesuffix(".pyc").removesuffix(".py"), top
    if len(parts) == 2:
        return group, f"{top}/ (its own files)"
    return group, f"{top}/{parts[1]}"


def layer_contents(entries: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
    """Groups (top-level packages), largest first, each with its parts by kind, largest first."""
    sized: dict[tuple[str, str, str], int] = defaultdict(int)
    for path, size in entries:
        relative = _SITE.sub("", path)
        if not relative or relative.endswith("/"):
            continue
        kind = kind_of(relative)
        group, part = _group_and_part(relative, kind)
        sized[(group, part, kind)] += size
    total = sum(sized.values()) or 1
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    small: dict[str, int] = defaultdict(int)
    for (group, part, kind), size in sized.items():
        if size < SMALL_SHARE * total:
            small[group] += size
        else:
            label = part if kind in ("code", "library", "metadata") else f"{part}: {KIND_NAMES[kind]}"
            groups[group].append({"name": label, "kind": kind, "bytes": size})
    for group, size in small.items():
        groups[group].append({"name": f"{group}: smaller parts", "kind": "mixed", "bytes": size})
    ordered = [
        {"name": group, "bytes": sum(p["bytes"] for p in parts), "parts": sorted(parts, key=lambda p: -p["bytes"])}
        for group, parts in groups.items()
    ]
    return sorted(ordered, key=lambda g: -g["bytes"])


def function_stacks(
    functions: Sequence[dict[str, Any]], layers_of: Mapping[str, Sequence[str]], layer_bytes: Mapping[str, int]
) -> list[dict[str, Any]]:
    """Each function's bar: its layers (in extraction order, each with its unzipped bytes) and its
    code, against its limit. A function whose layers are not known keeps one segment for all."""
    stacks = []
    for fn in functions:
        names = layers_of.get(fn["name"])
        if names is not None and all(name in layer_bytes for name in names):
            segments = [{"name": name, "bytes": layer_bytes[name]} for name in names]
        else:
            segments = [{"name": "layers", "bytes": int(fn["layer_bytes"])}]
        stacks.append(
            {
                "name": fn["name"],
                "layers": segments,
                "code_bytes": int(fn["code_bytes"]),
                "total_bytes": int(fn["total_bytes"]),
                "limit_bytes": int(fn.get("limit_bytes", 0)) or None,
                "headroom_bytes": int(fn.get("headroom_bytes", 0)),
            }
        )
    return stacks
