"""The prune build step: read the layer's trace, plan (plan.py), delete in the staging folder.

Runs after strip and before the shared objects are stripped and the bytecode compiled, so it
sees `.py` sources and the libraries as installed, and later steps do no work on what goes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config.project import LayerConfig
from ...config.prune import DEFAULT_MANIFEST, PruneConfig, line_of
from ...config.trace_manifest import Trace, read_trace
from ...core.errors import ConfigError
from ...core.layer_tree import StepResult, module_name, remove_files, walk_files
from ...core.runtimes import MB
from ..shared_objects import is_shared_object, needed_libraries
from .contract import PrunedLayer, fix_for
from .plan import PrunePlan, modules_to_prove, package_of, part_note, plan_prune

STEP = "prune"


def manifest_path(folder: Path, config: PruneConfig) -> Path:
    return folder / config.manifest


def unmatched_problem(layer_toml: Path, entry: str, top_level: list[str]) -> str:
    try:
        line = line_of(layer_toml.read_text(encoding="utf-8"), entry)
    except OSError:
        line = None
    where = f"{layer_toml}:{line}" if line else str(layer_toml)
    return (
        f"{where}: [prune] names {entry!r}, which is no module or package this layer installs (its top-level "
        f"packages: {', '.join(top_level)}). Fix: correct the name, or remove it; a base layer's packages "
        f"cannot be pruned here."
    )


@dataclass(frozen=True)
class Pruned:
    step: StepResult
    plan: PrunePlan
    prove: list[str]  # modules the build's verify imports besides the top-level ones (plan.modules_to_prove)
    layer: PrunedLayer  # for the messages of a module found missing

    def step_dict(self, base: dict[str, Any]) -> dict[str, Any]:
        """The step as the build manifest keeps it: the gates need the pruned modules."""
        return {**base, "pruned_modules": list(self.plan.pruned_modules), "manifest": self.layer.manifest.name}


def run_prune(site: Path, layer: LayerConfig, config: PruneConfig) -> Pruned:
    """Delete what the plan removes from `site` (the layer's python/ folder in staging);
    `config` is the layer's [prune]."""
    folder, protect = layer.folder, layer.protect
    trace: Trace = read_trace(manifest_path(folder, config))
    files = dict(walk_files(site))
    needs = {
        rel: needed_libraries(site / rel)
        for rel in files
        if is_shared_object(rel) and package_of(rel, config.packages) is not None
    }
    plan = plan_prune(files, config, trace, needs, protect)
    if plan.unmatched:
        top_level = sorted({rel.split("/", 1)[0] for rel in files if "/" in rel and ".dist-info" not in rel})
        problems = [unmatched_problem(folder / "layer.toml", entry, top_level) for entry in plan.unmatched]
        raise ConfigError("\n".join(problems))
    freed = remove_files(site, list(plan.removed))
    ship_pruned_list(site, layer, config, plan.pruned_modules)
    notes = [f"{len(plan.kept_modules)} modules kept in {', '.join(config.packages)} (trace {config.manifest} + keep)"]
    notes += [part_note(part, plan.part_files[part], files, plan.pruned_modules) for part in plan.parts]
    notes += [f"kept {rel}: a kept shared object links to it" for rel in plan.rescued]
    by_part = report_parts(plan.parts)
    step = StepResult(STEP, len(plan.removed), freed, notes=tuple(notes), by_rule=by_part)
    return Pruned(step, plan, modules_to_prove(plan, config, trace), describe(layer, config, plan.pruned_modules))


# Inside the layer, for services/shared/pruned_modules.py: on Lambda, a handler that imports a pruned
# module logs the sandbox's own message. A dot-folder is no importable package, so it names no module.
PRUNED_LIST = ".pruned-modules"
MODULE_PLACEHOLDER = "{module}"  # pruned_modules.py puts the missing module's name here


def pruned_list(layer: LayerConfig, config: PruneConfig, pruned_modules: tuple[str, ...]) -> dict[str, Any]:
    """What the layer ships about its pruning: the modules, and the sandbox's fix (contract.fix_for) for
    any of them, with paths relative to the project's root as the sandbox prints them (a zip must not
    depend on where the checkout lies)."""
    fix = fix_for(MODULE_PLACEHOLDER, describe(layer, config, pruned_modules))
    relative = f"layers/{layer.name}"
    return {
        "layer": layer.name,
        "pruned_modules": list(pruned_modules),
        "fix": fix.replace(str(layer.folder), relative),
    }


def ship_pruned_list(site: Path, layer: LayerConfig, config: PruneConfig, pruned_modules: tuple[str, ...]) -> None:
    folder = site / PRUNED_LIST
    folder.mkdir(exist_ok=True)
    text = json.dumps(pruned_list(layer, config, pruned_modules), indent=1, sort_keys=True)
    (folder / f"{layer.name}.json").write_text(text + "\n", encoding="utf-8")


def report_parts(parts: dict[str, tuple[int, int]], smallest: int = MB // 10) -> dict[str, tuple[int, int]]:
    """The report's rows: each part of at least 0.1 MB, the rest summed in one row (the notes list all)."""
    rows = {f"prune: {part}": counts for part, counts in parts.items() if counts[1] >= smallest}
    small = [counts for counts in parts.values() if counts[1] < smallest]
    if small:
        label = f"prune: {len(small)} parts under {smallest / MB:.1f} MB"
        rows[label] = (sum(count for count, _ in small), sum(size for _, size in small))
    return rows


def describe(layer: LayerConfig, config: PruneConfig, pruned_modules: tuple[str, ...]) -> PrunedLayer:
    return PrunedLayer(
        name=layer.name,
        layer_toml=layer.folder / "layer.toml",
        manifest=manifest_path(layer.folder, config),
        pruned_modules=pruned_modules,
    )


def pruned_layer(layer: LayerConfig, steps: list[dict[str, Any]]) -> PrunedLayer | None:
    """A built layer's pruning (from its manifest's steps) as the messages need it; None: nothing pruned."""
    if layer.prune is None:
        return None
    pruned: list[str] = next((s.get("pruned_modules", []) for s in steps if s.get("step") == STEP), [])
    return describe(layer, layer.prune, tuple(pruned))


def plan_for_install(layer: LayerConfig, site: Path, files: list[str]) -> PrunePlan | None:
    """What the layer's [prune] removes from an unstripped install (`files` under `site`), for the
    checks that compare against one (None: no [prune]). Shared libraries a link rescues are not
    modules, so the closure is left out here."""
    if layer.prune is None:
        return None
    sizes = {rel: (site / rel).stat().st_size for rel in files if (site / rel).is_file()}
    return plan_prune(sizes, layer.prune, read_trace(manifest_path(layer.folder, layer.prune)), {}, layer.protect)


def pruned_by_config(layer: LayerConfig, site: Path, files: list[str]) -> tuple[set[str], list[PrunedLayer]]:
    """For `nox -s layer_tests`: the modules [prune] removes on purpose, and the layer as the
    messages need it ((set(), []): no [prune])."""
    plan = plan_for_install(layer, site, files)
    if plan is None or layer.prune is None:
        return set(), []
    pruned = {module for rel in plan.removed if (module := module_name(rel))}
    return pruned, [describe(layer, layer.prune, plan.pruned_modules)]


def pruned_files(layer: LayerConfig, site: Path, files: list[str]) -> dict[str, str]:
    """For upstream_tests' blame: file -> why [prune] removed it."""
    plan = plan_for_install(layer, site, files)
    if plan is None:
        return {}
    where = f"layers/{layer.name}/layer.toml"
    return {
        rel: f"[prune] of {where}: add {name!r} to its keep, or `module {name}` to its {plan_manifest(layer)}"
        for rel in plan.removed
        if (name := module_name(rel) or rel.rsplit("/", 1)[0].replace("/", "."))
    }


def plan_manifest(layer: LayerConfig) -> str:
    return layer.prune.manifest if layer.prune else DEFAULT_MANIFEST


def pruned_layer_beside(zip_path: Path) -> PrunedLayer | None:
    """A published zip's pruning, from the manifest written beside it (`<layer>.json`), for code that
    has the zip but not the project (the sandbox). Paths are relative to the project's root."""
    try:
        steps = json.loads(zip_path.with_suffix(".json").read_text(encoding="utf-8")).get("steps", [])
    except (OSError, ValueError, AttributeError):
        return None
    step = next((s for s in steps if isinstance(s, dict) and s.get("step") == STEP), None)
    if step is None:
        return None
    folder = Path("layers") / zip_path.stem
    manifest = folder / str(step.get("manifest", DEFAULT_MANIFEST))
    return PrunedLayer(zip_path.stem, folder / "layer.toml", manifest, tuple(step.get("pruned_modules", [])))
