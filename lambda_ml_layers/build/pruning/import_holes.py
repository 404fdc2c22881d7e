"""Kept code that imports a pruned module only when called: the build fails on it, before zipping.

The trace sees what the runs imported; a kept function that imports more when called
(scipy's `minimize(method="COBYLA")`, scikit-learn's `KBinsDiscretizer(strategy="kmeans")`)
would fail on Lambda with nothing in the build to say so. Every kept source file inside
`[prune] packages` is read (in the target interpreter, which knows the libraries' syntax) for
its imports, lazy ones included; one that names a pruned module is a hole, unless
`[prune.accepted_imports]` says why that import can never run on Lambda.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ...config.prune import PruneConfig, covers
from ...core.command_runner import call
from ...core.errors import PrunedModuleMissing
from ...core.layer_tree import module_name
from ...target_scripts import script
from .contract import MAX_SHOWN, PrunedLayer, keep_line
from .plan import package_of


@dataclass(frozen=True)
class ImportHole:
    path: str  # the kept file, under python/
    line: int
    module: str  # the pruned module it imports


def import_holes(
    imports: dict[str, list[tuple[str, int]]], pruned_modules: tuple[str, ...], accepted: dict[str, str]
) -> list[ImportHole]:
    """`imports`: kept file -> (module, line) it may import. One hole per import statement (pure)."""
    holes: dict[tuple[str, int], ImportHole] = {}
    for path, found in sorted(imports.items()):
        importer = module_name(path) or ""
        for module, line in found:
            if (path, line) in holes or not covers(pruned_modules, module):
                continue
            if covers(accepted, importer) or covers(accepted, module):
                continue
            holes[path, line] = ImportHole(path, line, module)
    return list(holes.values())


def holes_message(layer: PrunedLayer, holes: list[ImportHole]) -> str:
    """The build's error: each hole with its file and line, then the two fixes (pure)."""
    shown = [f"    python/{h.path}:{h.line} imports {h.module}" for h in holes[:MAX_SHOWN]]
    if len(holes) > MAX_SHOWN:
        shown.append(f"    ... and {len(holes) - MAX_SHOWN} more")
    modules = sorted({h.module for h in holes})
    return (
        f"Layer {layer.name}: kept code imports modules its [prune] section removes, so it would fail on Lambda "
        f"when that code runs:\n" + "\n".join(shown) + "\n  Fix: add what it needs to [prune] keep "
        f"({keep_line(layer.layer_toml)}; e.g. {modules[0]!r}), or, if such an import can never run on Lambda, "
        f"accept it under [prune.accepted_imports] in {layer.layer_toml} with the reason "
        f'("{modules[0]}" = "why"); then `inv build-layers`.'
    )


def check_import_holes(site: Path, python: str, config: PruneConfig, layer: PrunedLayer) -> None:
    """After the prune step removed its files from `site`: fail on any kept import of a pruned module."""
    files = sorted(
        str(path.relative_to(site))
        for path in site.rglob("*.py")
        if package_of(str(path.relative_to(site)), config.packages) is not None
    )
    with tempfile.TemporaryDirectory(prefix="imports-") as temp:
        out = Path(temp) / "imports.json"
        call(
            [python, "-I", "-S", "-B", script("module_imports"), str(site), json.dumps(files), str(out)],
            what="read the kept modules' imports",
        )
        raw = json.loads(out.read_text(encoding="utf-8"))
    imports = {path: [(str(m), int(n)) for m, n in found] for path, found in raw.items()}
    holes = import_holes(imports, layer.pruned_modules, config.accepted_imports)
    if holes:
        raise PrunedModuleMissing(holes_message(layer, holes))
