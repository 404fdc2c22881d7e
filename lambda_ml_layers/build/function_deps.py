"""Refuse a function whose own requirements re-declare a package one of its layers provides.

Pure: text in, problems out. Why it matters: /var/task comes before /opt on sys.path, so a
package in a function's own bundle silently shadows the layer's copy; two versions of, say,
numpy then meet in one process (the layer's scikit-learn built against the other one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name

from ..config.locks import parse_lock, parse_requirements_in
from ..core.errors import ConfigError, collect


def redeclared_packages(
    function: str,
    requirements_in: str,
    layer_packages: Mapping[str, Iterable[str]],
    source: str = "requirements.in",
    lock: str | None = None,
    lock_source: str = "requirements.txt",
) -> list[str]:
    """Every package the function's requirements.in (and, given, its lock) shares with a layer.

    `layer_packages` maps each layer the function uses to the packages it provides (all of
    them, as its lock pins them, not only its direct requirements).
    """
    provider: dict[str, str] = {}
    for layer, packages in layer_packages.items():
        for package in packages:
            provider.setdefault(canonicalize_name(package), layer)
    problems = []
    declared = {canonicalize_name(r.name): str(r) for r in parse_requirements_in(requirements_in, source)}
    for name, requirement in sorted(declared.items()):
        if name in provider:
            problems.append(
                f"{source}: function {function} re-declares {requirement!r}, which layer "
                f"{provider[name]} provides. Remove it from {source} and regenerate the "
                f"function's lock; the function uses the layer's {name}."
            )
    if lock is not None:
        for locked_name, locked in sorted(parse_lock(lock, lock_source).items()):
            if locked_name in provider and locked_name not in declared:
                pulled_by = ", ".join(locked.via) or "a dependency"
                problems.append(
                    f"{lock_source}: function {function} would bundle {locked_name}=={locked.version} "
                    f"(via {pulled_by}), which layer {provider[locked_name]} provides. Drop the "
                    f"requirement that pulls it in, or move that requirement into the layer."
                )
    return problems


def check_function_requirements(function: str, function_dir: Path, layer_locks: Mapping[str, Path]) -> None:
    """Read a function's requirements.in/.txt and its layers' locks; raise once with every problem.

    `layer_locks` maps the function's layers (by name) to their requirements.txt.
    """
    requirements_in = function_dir / "requirements.in"
    if not requirements_in.exists():
        raise ConfigError(
            f"{requirements_in} is missing: every function keeps one (with only a comment if "
            f"its layers provide everything it needs)."
        )
    lock_path = function_dir / "requirements.txt"
    layer_packages = {layer: list(parse_lock(path.read_text(), str(path))) for layer, path in layer_locks.items()}
    problems = redeclared_packages(
        function,
        requirements_in.read_text(),
        layer_packages,
        source=str(requirements_in),
        lock=lock_path.read_text() if lock_path.exists() else None,
        lock_source=str(lock_path),
    )
    collect(problems, ConfigError, f"Function {function} re-declares packages its layers provide:")
