"""The build-time check that every function still finds what it imports in its pruned layers.

Reads the template's functions, their code and the built zips; the rule is contract.contract_problems.
Runs on every build (cache hits included), because a function's code changes without its layers.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ...config.project import ProjectConfig
from ...config.template import TEMPLATE, function_specs, package_files
from ...core.errors import PrunedModuleMissing
from ...core.layer_tree import module_name
from ...core.runtimes import RUNTIMES, python_lib_dir
from ..artifacts import LayerBuild
from .contract import contract_problems
from .step import pruned_layer


def zip_modules(zip_path: Path, runtime: str) -> set[str]:
    """Every module a layer zip provides (python/ and python/lib/pythonX.Y/site-packages/)."""
    prefixes = (f"{python_lib_dir(RUNTIMES[runtime])}/", "python/")
    found = set()
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            prefix = next((p for p in prefixes if name.startswith(p)), None)
            if prefix and (module := module_name(name[len(prefix) :])):
                found.add(module)
    return found


def check_function_imports(project: ProjectConfig, builds: dict[str, LayerBuild]) -> None:
    """Raise PrunedModuleMissing naming each import (file:line) of a module a layer pruned."""
    template = project.root / TEMPLATE
    if not template.exists():
        return
    problems = []
    for spec in function_specs(template):
        for name in spec.layers:
            build = builds.get(name)
            if build is None or build.runtime != spec.runtime or build.arch != spec.arch:
                continue
            pruned = pruned_layer(project.layer(name), build.steps)
            if pruned is None:
                continue
            sources = {
                str(spec.code_dir / rel): (spec.code_dir / rel).read_text(encoding="utf-8")
                for rel, _ in package_files(spec.code_dir)
                if rel.endswith(".py")
            }
            problems += contract_problems(spec.name, sources, pruned, zip_modules(Path(build.zip_path), build.runtime))
    if problems:
        raise PrunedModuleMissing(
            "A function imports what its pruned layer no longer has, so nothing was published:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
