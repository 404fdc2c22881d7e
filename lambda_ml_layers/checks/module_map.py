"""Which layer provides each top-level module (numpy, sklearn, dateutil, boto3, ...): written once,
derived from the built layer zips, for the handlers' "attach layer X" errors.

The handlers run on Lambda without the engine, so they read a generated copy,
services/shared/layer_modules.json (linked into each function package like runtime.py).
`inv layer-modules` writes it from the default target's built zips; `check_layer_modules`
(run by the real-layer tests) refuses a copy that no longer matches them. A zip holds what
/opt gets: its top-level modules are exactly what the layer provides (base layers'
packages are not repeated in it), and every package of its lock is in it (the build
verifies that), so the map follows the locks through the build.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from pathlib import Path

from ..config.project import ProjectConfig, build_order
from ..config.template import TEMPLATE, load_template, template_layers
from ..core.errors import LayerToolError, LockError
from ..core.layer_tree import module_name
from ..core.paths import BuildPaths
from ..core.runtimes import RUNTIMES, python_lib_dir

MODULE_MAP = Path("services/shared/layer_modules.json")
COMMAND = "inv layer-modules"


def top_level_modules(names: Iterable[str], runtime: str) -> set[str]:
    """Pure: the top-level import names of a layer zip's entries (python/ and its site-packages)."""
    prefixes = (f"{python_lib_dir(RUNTIMES[runtime])}/", "python/")
    found = set()
    for name in names:
        prefix = next((p for p in prefixes if name.startswith(p)), None)
        module = module_name(name[len(prefix) :]) if prefix else None
        if module:
            found.add(module.split(".")[0])
    return found


def module_layers(provided: dict[str, set[str]], logical_ids: dict[str, str]) -> dict[str, str]:
    """Pure: module -> the template's logical id of the one layer providing it (folder name if
    the template does not deploy the layer). Two layers providing one module is refused."""
    owner: dict[str, str] = {}
    problems = []
    for layer, modules in provided.items():
        for module in sorted(modules):
            if module in owner:
                problems.append(f"module {module!r} is in both {owner[module]} and {layer}")
            owner[module] = layer
    if problems:
        raise LayerToolError(
            "Cannot map modules to layers: " + "; ".join(problems) + ". Make one layer the other's base layer."
        )
    return {module: logical_ids.get(layer, layer) for module, layer in sorted(owner.items())}


def map_text(modules: dict[str, str]) -> str:
    document = {
        "_generated_by": f"`{COMMAND}` from the built layer zips (lambda_ml_layers/checks/module_map.py); do not edit",
        "modules": dict(sorted(modules.items())),
    }
    return json.dumps(document, indent=2) + "\n"


def derive_map(project: ProjectConfig) -> dict[str, str]:
    """The map from the default target's published zips and infra/template.yaml's logical ids."""
    runtime, arch = project.default_runtime, project.default_arch
    output_dir = BuildPaths.of(project.root).output_dir(runtime, arch)
    provided = {}
    for layer in build_order(project):
        path = output_dir / f"{layer.name}.zip"
        if not path.exists():
            raise LayerToolError(
                f"{path} is missing, so the module map cannot be derived. "
                f"Fix: `inv build-layers --runtime {runtime} --arch {arch}`, then `{COMMAND}`."
            )
        with zipfile.ZipFile(path) as archive:
            provided[layer.name] = top_level_modules(archive.namelist(), runtime)
    template = project.root / TEMPLATE
    layers = template_layers(load_template(template)).values() if template.exists() else []
    return module_layers(provided, {layer.layer_name: layer.logical_id for layer in layers})


def write_layer_modules(project: ProjectConfig) -> Path:
    """Regenerate services/shared/layer_modules.json (written whole, then renamed into place)."""
    target = project.root / MODULE_MAP
    temp = target.with_name(f".{target.name}.part")
    temp.write_text(map_text(derive_map(project)))
    temp.replace(target)
    return target


def check_layer_modules(project: ProjectConfig) -> None:
    """Refuse a committed map that differs from what the built layers give."""
    target = project.root / MODULE_MAP
    expected = derive_map(project)
    try:
        committed = json.loads(target.read_text())["modules"]
    except (OSError, ValueError, KeyError, TypeError):
        committed = None
    if committed != expected:
        raise LockError(
            f"{MODULE_MAP} does not match the built layers (expected {expected}, found {committed}). "
            f"Fix: `{COMMAND}` and commit the file."
        )
