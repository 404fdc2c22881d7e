"""Compile the layer's bytecode with the target interpreter, as the layer's policy says.

/opt is read-only on Lambda, so Python cannot cache bytecode there: without shipped .pyc,
every cold start compiles each module it imports. Zip tools normalise timestamps, which
makes ordinary timestamp-checked .pyc stale, so .pyc here are unchecked-hash (pyc) or
sourceless (bytecode only, which Python loads without looking for source).
"""

from __future__ import annotations

from pathlib import Path

from ..core.command_runner import call
from ..core.errors import BuildInterrupted, InstallError
from ..core.layer_tree import StepResult, remove_files, tree_size, walk_files
from ..target_scripts import script
from .pip_failures import NO_SPACE


def compile_bytecode(site: Path, python: str, policy: str, opt_path: str, docstrings: str = "keep") -> StepResult:
    """`opt_path` is where `site` will be on Lambda (e.g. /opt/python), for tracebacks.
    docstrings "strip": compiled without docstrings, asserts kept (target_scripts/docstring_free_compile.py)."""
    if policy == "source":
        return StepResult("bytecode", notes=("source only: every cold start compiles what it imports",))
    command = [
        python,
        "-I",
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(site),
        "-p",
        opt_path,
    ]
    if policy == "sourceless":
        command.append("-b")  # .pyc beside the .py, where Python finds it once the .py is gone
    command.append(str(site))
    if docstrings == "strip":
        command = [python, "-I", script("docstring_free_compile"), str(site), opt_path, policy]
    size_before = tree_size(site)
    # error=None: compileall exits 1 when any file fails to compile; those are kept as source (below).
    result = call(command, error=None)
    if result.returncode < 0:  # killed by a signal (Ctrl-C): the tree is half compiled
        raise BuildInterrupted(f"compiling bytecode was stopped by signal {-result.returncode}")
    if NO_SPACE in result.output or result.returncode not in (0, 1):
        raise InstallError(
            f"Compiling bytecode in {site} failed (exit {result.returncode}):\n{result.tail(10)}\n"
            f"  Fix: if it says {NO_SPACE!r}, free space on the disk holding {site} (`df -h {site}`; "
            f"deleting build/cache is safe); otherwise set the layer's bytecode policy to 'source'."
        )
    sources = [rel for rel, _ in walk_files(site) if rel.endswith(".py")]
    if policy == "pyc":
        added = tree_size(site) - size_before
        notes = [f"{len(sources)} modules compiled beside their source"]
        if result.returncode == 1:  # some did not compile: they stay source only, compiled at import
            notes.append(f"compileall reported files it could not compile: {result.tail(3)}")
        return StepResult("bytecode", bytes_removed=-added, notes=tuple(notes))
    compiled = [rel for rel in sources if (site / (rel + "c")).exists()]
    uncompiled = sorted(set(sources) - set(compiled))
    if not compiled and sources:
        raise InstallError(
            f"compileall produced no bytecode in {site} (exit {result.returncode}):\n{result.output[-2000:]}"
        )
    remove_files(site, compiled)
    freed = size_before - tree_size(site)  # net: source removed less bytecode added
    notes = [f"{len(compiled)} modules shipped as bytecode only"]
    if uncompiled:
        notes.append(f"{len(uncompiled)} kept as source (did not compile): {', '.join(uncompiled[:5])}")
    return StepResult("bytecode", files_removed=len(compiled), bytes_removed=freed, notes=tuple(notes))
