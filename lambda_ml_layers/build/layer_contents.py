"""What a layer holds: its locked packages less what its base layers provide, and the
modules to import when verifying it. Shared by the build, `nox -s layer_tests` and the benchmarks."""

from __future__ import annotations

from pathlib import Path

from ..config.locks import LayerLock, LockedPackage, read_layer_lock
from ..config.project import LayerConfig, ProjectConfig, base_layers_of
from ..core.errors import LockError
from ..core.layer_tree import read_distributions


def load_locks(project: ProjectConfig, layers: list[LayerConfig]) -> dict[str, LayerLock]:
    locks = {}
    problems = []
    for layer in layers:
        try:
            locks[layer.name] = read_layer_lock(layer.name, layer.requirements_in, layer.lock, project.root / "layers")
        except LockError as exc:
            problems.append(str(exc))
    if problems:
        raise LockError("\n".join(problems))
    return locks


def provided_by_base(project: ProjectConfig, locks: dict[str, LayerLock], layer: LayerConfig) -> dict[str, str]:
    """Package -> the base layer that provides it; a version disagreement is a lock problem."""
    provided: dict[str, str] = {}
    problems = []
    own = locks[layer.name].packages
    for base in base_layers_of(project, layer):
        for name, package in locks[base.name].packages.items():
            provided.setdefault(name, base.name)
            if name in own and own[name].version != package.version:
                problems.append(
                    f"{layer.name} locks {name}=={own[name].version} but its base layer {base.name} "
                    f"locks {package.version}; run `nox -s lock` to resolve all layers together."
                )
    if problems:
        raise LockError("\n".join(problems))
    return provided


def packages_to_install(project: ProjectConfig, locks: dict[str, LayerLock], layer: LayerConfig) -> list[LockedPackage]:
    """The layer's locked packages less what its base layers provide."""
    provided = provided_by_base(project, locks, layer)
    return [package for package in locks[layer.name].packages.values() if package.name not in provided]


def modules_to_verify(site: Path, layer: LayerConfig) -> list[str]:
    """Every top-level module the installed distributions provide, less the layer's skip_imports."""
    return sorted({m for dist in read_distributions(site) for m in dist.top_level} - set(layer.skip_imports))
