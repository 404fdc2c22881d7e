"""The contract of a pruned layer: what a function imports must have survived, and a missing
module is explained by the `[prune]` line that removed it (pure; the caller reads the files)."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config.prune import covers

MAX_SHOWN = 10  # problems a [prune] message lists before '... and N more'
_MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")


@dataclass(frozen=True)
class PrunedLayer:
    """What the messages need to know about one pruned layer."""

    name: str
    layer_toml: Path
    manifest: Path
    pruned_modules: tuple[str, ...]  # top-most pruned modules, from the build's prune step


def keep_line(layer_toml: Path) -> str:
    """Where a new keep entry goes: `layer.toml:<line of keep =>` when it can be read."""
    try:
        text = layer_toml.read_text(encoding="utf-8")
    except OSError:
        return str(layer_toml)
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith("keep"):
            return f"{layer_toml}:{number}"
    return str(layer_toml)


def fix_for(module: str, layer: PrunedLayer) -> str:
    return (
        f"{module} was pruned from layer {layer.name} by its [prune] section. Fix: add {module!r} to [prune] keep "
        f"({keep_line(layer.layer_toml)}), or add the line `module {module}` to {layer.manifest} (regenerate it "
        f"with `inv trace-layers` after a run that imports it), then `inv build-layers`."
    )


def explain_missing(text: str, layers: Iterable[PrunedLayer]) -> str | None:
    """For an error text with "No module named 'x'": the fix, if x is a module a layer pruned."""
    for missing in _MISSING_MODULE.findall(text):
        for layer in layers:
            if covers(layer.pruned_modules, missing):
                return fix_for(missing, layer)
    return None


def invocation_fix(error: Any, result: Any, logs: str, layers: Iterable[PrunedLayer]) -> str | None:
    """For a sandbox invocation that failed (an init error, or a handler's structured error result
    whose log line carries "No module named 'x'"): the fix, if x is a module a layer pruned."""
    failed = error is not None or (isinstance(result, dict) and result.get("status") == "error")
    return explain_missing(json.dumps(error) + json.dumps(result, default=str) + logs, layers) if failed else None


def imported_modules(source: str, filename: str) -> list[tuple[str, int]]:
    """Every absolute module a function's source may import, anywhere in it (lazy imports
    too), with its line: `import a.b` gives a.b; `from a import b` gives a and a.b (b may be a
    submodule; the caller only counts a.b if the unpruned layer had such a module)."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*"]
    return found


def contract_problems(function: str, files: dict[str, str], layer: PrunedLayer, provided: set[str]) -> list[str]:
    """A function's imports (file -> source) that the pruned layer removed. `provided`: the
    modules the layer's zip holds. Only names inside the pruned modules count, so `from sklearn
    import clone` (an attribute) passes while `import scipy.io` (pruned) does not."""
    problems: dict[tuple[str, int], str] = {}  # one per import statement: `from a import b` names a first
    for path, source in sorted(files.items()):
        for module, line in imported_modules(source, path):
            if (path, line) not in problems and module not in provided and covers(layer.pruned_modules, module):
                problems[path, line] = f"{path}:{line}: function {function} imports {module}. {fix_for(module, layer)}"
    return list(problems.values())
