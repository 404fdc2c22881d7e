"""Which layer each loaded file came from, and what kind of line it makes in the manifest.

A traced process records paths relative to the opt/ folder it ran on (target_scripts/
trace_loads.py). Several layers are extracted into that one folder, a later one overwriting an
earlier one's file as Lambda does, so a path belongs to the last layer that ships it. Pure
functions over names and sizes: the zips are read at the edge (`index_zips`).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..build.shared_objects import is_shared_object
from ..core.layer_tree import module_name

LAYER_ROOT = "python/"  # manifest paths are relative to the layer's python/ folder


@dataclass(frozen=True)
class LayerIndex:
    """The files of the layers laid out in one opt/: path relative to opt/ -> (layer, bytes)."""

    owners: Mapping[str, tuple[str, int]]
    folders: Mapping[str, frozenset[str]]  # folder relative to opt/ -> layers with files under it


def index_layers(layers: Iterable[tuple[str, Iterable[tuple[str, int]]]]) -> LayerIndex:
    """Layers in extraction order, each with its (path, bytes); a later layer's file wins."""
    owners: dict[str, tuple[str, int]] = {}
    for layer, files in layers:
        for path, size in files:
            if not path.endswith("/"):
                owners[path] = (layer, size)
    folders: dict[str, set[str]] = {}
    for path, (layer, _) in owners.items():
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folders.setdefault("/".join(parts[:depth]), set()).add(layer)
    return LayerIndex(owners, {folder: frozenset(layers) for folder, layers in folders.items()})


def zip_files(layer_zip: Path) -> list[tuple[str, int]]:
    with zipfile.ZipFile(layer_zip) as archive:
        return [(info.filename, info.file_size) for info in archive.infolist() if not info.is_dir()]


@dataclass(frozen=True)
class LoadRecord:
    """One traced process: paths relative to opt/ (see trace_loads.py)."""

    opened: frozenset[str] = frozenset()
    loaded: frozenset[str] = frozenset()  # mapped by the dynamic loader or ctypes.dlopen'ed
    modules: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # sys.modules name -> its files

    @classmethod
    def read(cls, path: Path) -> LoadRecord:
        data = json.loads(path.read_text())
        return cls(
            frozenset(data["opened"]),
            frozenset(data["mapped"]) | frozenset(data["dlopened"]),
            {name: tuple(files) for name, files in data["modules"].items()},
        )


@dataclass
class LayerUsage:
    """What one layer gave the traced runs, accumulated over records."""

    modules: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)  # relative to python/
    libraries: set[str] = field(default_factory=set)  # relative to python/
    covered: set[str] = field(default_factory=set)  # relative to opt/: every file counted above


def import_relative(path: str, import_roots: list[str]) -> str | None:
    """The path as the import system sees it: relative to the first sys.path folder holding it."""
    for root in import_roots:
        if path.startswith(root + "/"):
            return path[len(root) + 1 :]
    return None


def module_of(path: str) -> str | None:
    """The module a file under a sys.path folder provides; bytecode cached beside source
    (pkg/__pycache__/mod.cpython-312.pyc) counts as its source's module."""
    parts = path.split("/")
    if len(parts) >= 2 and parts[-2] == "__pycache__":
        path = "/".join([*parts[:-2], parts[-1].split(".", 1)[0] + ".py"])
    return module_name(path)


def attribute(record: LoadRecord, index: LayerIndex, import_roots: list[str]) -> dict[str, LayerUsage]:
    """Pure: per layer, the modules, data files and shared libraries this record shows it gave."""
    usage: dict[str, LayerUsage] = {}
    for path in sorted(record.opened | record.loaded | {p for files in record.modules.values() for p in files}):
        owner = index.owners.get(path)
        if owner is None:
            continue  # a folder, a file the layers do not ship (a failed open), or another layer root
        used = usage.setdefault(owner[0], LayerUsage())
        inner = import_relative(path, import_roots)
        module = module_of(inner) if inner else None
        if module is not None:
            used.modules.add(module)
        elif path in record.loaded and is_shared_object(path):
            used.libraries.add(path.removeprefix(LAYER_ROOT))
        elif path in record.opened:
            used.files.add(path.removeprefix(LAYER_ROOT))
        else:
            continue
        used.covered.add(path)
    for name, places in record.modules.items():
        for folder in places:
            # A namespace package is a folder, not a file: it belongs to every layer with files in it.
            inner = import_relative(folder, import_roots)
            if folder in index.folders and inner and inner.replace("/", ".") == name:
                for layer in index.folders[folder]:
                    usage.setdefault(layer, LayerUsage()).modules.add(name)
    return usage


def merge(into: dict[str, LayerUsage], more: Mapping[str, LayerUsage]) -> None:
    """Add one record's usage to the running union."""
    for layer, used in more.items():
        total = into.setdefault(layer, LayerUsage())
        total.modules |= used.modules
        total.files |= used.files
        total.libraries |= used.libraries
        total.covered |= used.covered
