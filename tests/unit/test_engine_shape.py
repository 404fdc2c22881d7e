"""The engine's shape: modules import one another in one direction only (no import cycles)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.project_factory import REPO

ENGINE = REPO / "lambda_ml_layers"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def engine_imports(path: Path) -> set[str]:
    """Engine modules `path` imports (at any depth of the file, TYPE_CHECKING blocks included)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.startswith("lambda_ml_layers."))
    return found


def test_the_engine_has_no_import_cycle() -> None:
    modules = {module_name(p): p for p in ENGINE.rglob("*.py")}
    graph = {name: {m for m in engine_imports(path) if m in modules and m != name} for name, path in modules.items()}
    cycles = []
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for imported in sorted(graph[name]):
            if state.get(imported) == "open":
                cycles.append(" -> ".join([*trail[trail.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*trail, imported])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_report_and_gates_do_not_reach_back_into_the_build_story() -> None:
    for module in ("report", "artifacts", "build_gates", "scheduler", "layer_build_steps", "progress"):
        assert "lambda_ml_layers.build" not in engine_imports(ENGINE / f"{module}.py"), module


def test_only_paths_py_spells_out_the_published_folder() -> None:
    """Code asks paths.BuildPaths where builds are published; docs may name the folder for users."""
    spelled = "build" + "/layers"  # not written out here either
    code = [
        *REPO.glob("*.py"),
        *(p for top in ("lambda_ml_layers", "tests", "benchmarks") for p in (REPO / top).rglob("*.py")),
    ]
    offenders = [str(p.relative_to(REPO)) for p in code if spelled in p.read_text() and p != ENGINE / "paths.py"]
    assert offenders == []


MAX_MODULE_LINES = 300  # issue 7: a module that outgrows this does more than one job


def test_no_engine_module_is_over_300_lines() -> None:
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in ENGINE.rglob("*.py")}
    assert {path: lines for path, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}
