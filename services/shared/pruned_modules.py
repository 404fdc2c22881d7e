"""On Lambda, a module a layer's `[prune]` removed is named as such, with the fix the sandbox gives.

Without this, a handler that reaches a pruned module at run time (a pickled GaussianNB needs
`sklearn.naive_bayes` only when the model is unpickled) logs a bare "No module named ...". A layer
built with `[prune]` on ships `python/.pruned-modules/<layer>.json` (lambda_ml_layers/build/pruning/
step.py): its pruned modules and the sandbox's own fix, written for a placeholder module. Whole
layers ship none, and then nothing here is read twice (the scan is cached per container).

Linked into each function package beside runtime.py (tests/services/test_shared_copies.py).
Standard library only: it runs when a layer import has just failed.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any

FOLDER = ".pruned-modules"  # under /opt/python (on sys.path), from each pruned layer
PLACEHOLDER = "{module}"


@functools.cache
def shipped_lists() -> tuple[dict[str, Any], ...]:
    """Every pruned layer's list on sys.path, in path order (the layer that wins an import wins here)."""
    found = []
    for entry in sys.path:
        folder = os.path.join(entry or ".", FOLDER)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as file:
                    data = json.load(file)
            except (OSError, ValueError):
                continue  # a broken list must not hide the original error
            if isinstance(data, dict) and isinstance(data.get("pruned_modules"), list):
                found.append(data)
    return tuple(found)


def pruned_fix(module: str) -> tuple[str, str] | None:
    """(layer, the sandbox's message and fix) if a shipped list has `module` or a package holding it."""
    for data in shipped_lists():
        for prefix in data["pruned_modules"]:
            if module == prefix or module.startswith(f"{prefix}."):
                return str(data.get("layer")), str(data.get("fix", "")).replace(PLACEHOLDER, module)
    return None


def log_if_pruned(exc: BaseException, log: Callable[..., None]) -> bool:
    """Log one ModulePruned line and return True if `exc` (or what it was raised from) is a
    ModuleNotFoundError for a module a layer pruned; False, logging nothing, otherwise."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ModuleNotFoundError) and seen.name:
            found = pruned_fix(seen.name)
            if found is not None:
                log(found[1], error_type="ModulePruned", layer=found[0], module=seen.name)
                return True
        seen = seen.__cause__ or seen.__context__
    return False
