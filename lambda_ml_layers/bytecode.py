"""Compile the layer's bytecode with the target interpreter, as the layer's policy says.

/opt is read-only on Lambda, so Python cannot cache bytecode there: without shipped .pyc,
every cold start compiles each module it imports. Zip tools normalise timestamps, which
makes ordinary timestamp-checked .pyc stale, so .pyc here are unchecked-hash (pyc) or
sourceless (bytecode only, which Python loads without looking for source).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .errors import BuildInterrupted, InstallError
from .layer_tree import StepResult, remove_files, tree_size, walk_files

# Run by the target interpreter as a script, like compileall.
DOCSTRING_FREE_COMPILE = Path(__file__).with_name("docstring_free_compile.py")


def compile_bytecode(site: Path, python: str, policy: str, opt_path: str, docstrings: str = "keep") -> StepResult:
    """`opt_path` is where `site` will be on Lambda (e.g. /opt/python), for tracebacks.
    docstrings "strip": compiled without docstrings, asserts kept (docstring_free_compile.py)."""
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
        command = [python, "-I", str(DOCSTRING_FREE_COMPILE), str(site), opt_path, policy]
    size_before = tree_size(site)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode < 0:  # killed by a signal (Ctrl-C): the tree is half compiled
        raise BuildInterrupted(f"compiling bytecode was stopped by signal {-result.returncode}")
    sources = [rel for rel, _ in walk_files(site) if rel.endswith(".py")]
    if policy == "pyc":
        added = tree_size(site) - size_before
        return StepResult(
            "bytecode", bytes_removed=-added, notes=(f"{len(sources)} modules compiled beside their source",)
        )
    compiled = [rel for rel in sources if (site / (rel + "c")).exists()]
    uncompiled = sorted(set(sources) - set(compiled))
    if not compiled and sources:
        raise InstallError(
            f"compileall produced no bytecode in {site}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    remove_files(site, compiled)
    freed = size_before - tree_size(site)  # net: source removed less bytecode added
    notes = [f"{len(compiled)} modules shipped as bytecode only"]
    if uncompiled:
        notes.append(f"{len(uncompiled)} kept as source (did not compile): {', '.join(uncompiled[:5])}")
    return StepResult("bytecode", files_removed=len(compiled), bytes_removed=freed, notes=tuple(notes))
