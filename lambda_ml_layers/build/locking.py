"""`nox -s lock` and `nox -s lock_check`: one resolution for all layers, then one lock per layer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..config.cuda_wheels import cuda_warnings
from ..config.locks import (
    LOCK_COMMAND,
    RESOLUTION_FILE,
    lock_problems,
    parse_lock,
    parse_requirements_in,
    read_layer_lock,
)
from ..config.project import ProjectConfig
from ..core.errors import LockError, collect
from .pip_runner import pip_compile

TOOLING_LOCK_COMMAND = "nox -s lock_tooling"


def compile_locks(
    project: ProjectConfig, python: str, upgrade: bool = False, say: Callable[[str], None] = print
) -> None:
    """Resolve every layer's requirements.in together, then lock each layer within that resolution.

    Resolving together keeps a package shared by two layers (python-dateutil, numpy) at one
    version; each layer's lock is then compiled with the resolution as a constraint.
    """
    layers_dir = project.root / "layers"
    sources = [str(layer.requirements_in.relative_to(layers_dir)) for layer in project.layers]
    extra = ["--upgrade"] if upgrade else []
    say(f"Resolving {len(sources)} layers together -> layers/{RESOLUTION_FILE}")
    pip_compile(python, sources, RESOLUTION_FILE, cwd=layers_dir, hashes=False, extra_args=extra)
    for layer in project.layers:
        say(f"Locking {layer.name} -> {layer.lock.relative_to(project.root)}")
        pip_compile(
            python,
            ["requirements.in"],
            "requirements.txt",
            cwd=layer.folder,
            constraint=f"../{RESOLUTION_FILE}",
            extra_args=extra,
        )


def check_locks(project: ProjectConfig) -> list[str]:
    """Raise LockError listing every stale or hash-less lock; return one line per good lock, and
    a `warning:` line for each package that pulls CUDA-only wheels into one."""
    problems: list[str] = []
    good = []
    for layer in project.layers:
        try:
            lock = read_layer_lock(layer.name, layer.requirements_in, layer.lock, project.root / "layers")
        except LockError as exc:
            problems.append(str(exc))
            continue
        good.append(f"{layer.lock.relative_to(project.root)}: {len(lock.packages)} packages, hashed, current")
        good += [
            f"warning: {layer.lock.relative_to(project.root)}: {warning}"
            for warning in cuda_warnings(layer.name, lock.packages)
        ]
    collect(problems, LockError, "Some locks cannot be used:")
    return good


def check_tooling_lock(requirements_in: Path, lock_path: Path) -> str:
    """The tooling's own lock must be hashed and current against its .in as well."""
    if not lock_path.exists():
        raise LockError(f"{lock_path} is missing; create it with `{TOOLING_LOCK_COMMAND}`.")
    try:
        lock = parse_lock(lock_path.read_text(), str(lock_path))
    except LockError as exc:  # its advice names the layers' lock session; the tooling has its own
        raise LockError(str(exc).replace(LOCK_COMMAND, TOOLING_LOCK_COMMAND)) from None
    requirements = parse_requirements_in(requirements_in.read_text(), str(requirements_in))
    problems = [
        p.replace(LOCK_COMMAND, TOOLING_LOCK_COMMAND) for p in lock_problems(requirements, lock, None, str(lock_path))
    ]
    collect(problems, LockError, "The tooling lock cannot be used:")
    return f"{lock_path}: {len(lock)} packages, hashed, current"
