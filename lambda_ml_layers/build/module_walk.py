"""The modules the build's verify imports: every module of the layer's own packages that imports
from the plain install, not only the top-level ones.

Importing `lightgbm` alone proves little: lightgbm quietly turns its scikit-learn API off when
`import sklearn` fails, and a top-level import hides a broken submodule until a function reaches
it. So, as `nox -s layer_tests` does against the zip, the build imports each module of the fresh
install (on top of its base layers) before anything is removed, and the verify then imports from
the zip every one that worked. A module that fails even from the plain install (an optional
dependency the lock does not have) cannot be proven: the verify's note counts them and names the
first. The walk runs only when a layer is built fresh, so a cache hit costs nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..config.project import LayerConfig
from ..config.prune import covers
from ..config.strip_rules import plan_strip
from ..core.layer_tree import module_name, walk_files
from .target_imports import run_each

SHOWN = 3  # modules a note names before "and N more"


def modules_of(files: list[str]) -> dict[str, str]:
    """Module name -> one file that provides it."""
    found: dict[str, str] = {}
    for rel in files:
        name = module_name(rel)
        if name:
            found.setdefault(name, rel)
    return found


def walk_candidates(files: list[str], layer: LayerConfig) -> list[str]:
    """Every module of the install the verify should prove (pure): not one a strip rule removes on
    purpose, nor one under [verify] skip_imports or [layer_tests] allowed_import_failures."""
    plan = plan_strip(files, layer.strip_rules, layer.protect)
    removed = {name for paths in plan.values() for rel in paths if (name := module_name(rel))}
    exempt = (*layer.skip_imports, *layer.allowed_import_failures)
    return sorted(m for m in modules_of(files) if m not in removed and not covers(exempt, m))


@dataclass(frozen=True)
class ModuleWalk:
    importable: tuple[str, ...]  # imported from the plain install: the verify imports them from the zip
    unprovable: dict[str, str]  # module -> why it fails even from the plain install
    seconds: float = 0.0  # the walk's own time (the verify's import from the zip comes on top)

    def without(self, pruned: tuple[str, ...]) -> list[str]:
        """The modules to prove once `pruned` (a [prune] step's top-most modules) are gone."""
        return [m for m in self.importable if not covers(pruned, m)]

    def note(self) -> str:
        """What the walk proves and what it cannot, for the verify step's notes."""
        text = (
            f"module walk: {len(self.importable)} modules imported from the plain install in {self.seconds:.0f} s, "
            f"each then imported from the zip"
        )
        if not self.unprovable:
            return text
        first = sorted(self.unprovable)[:SHOWN]
        named = "; ".join(f"{m} ({self.unprovable[m][:120]})" for m in first)
        more = f" and {len(self.unprovable) - len(first)} more" if len(self.unprovable) > len(first) else ""
        return (
            f"{text}; {len(self.unprovable)} fail even from the plain install (optional dependencies the lock "
            f"lacks), so nothing can prove them: {named}{more}"
        )


def walk_install(python: str, site: Path, layer: LayerConfig, base_paths: list[str], workdir: Path) -> ModuleWalk:
    """Import every candidate module from `site` (the fresh install) with the base layers' paths after it."""
    started = time.monotonic()
    candidates = walk_candidates([rel for rel, _ in walk_files(site)], layer)
    results = run_each(python, "import", candidates, workdir, [str(site), *base_paths])
    return ModuleWalk(
        importable=tuple(m for m in candidates if results.get(m, "not imported") is None),
        unprovable={m: str(error) for m, error in results.items() if error is not None},
        seconds=time.monotonic() - started,
    )
