"""The engine's shape: folders by phase, imports only downward, no loops, one job per module.

A newcomer finds a behaviour from the folder names (docs/architecture.md opens with the tree);
that only stays true while each folder uses only the folders below it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from tests.project_factory import REPO

ENGINE = REPO / "lambda_ml_layers"
SERVICES = REPO / "services"

# A folder may import only the folders ranked below it (and itself); folders of one rank never
# import each other. target_scripts/ run in the target interpreter and import nothing of ours;
# local_aws_fixes/ runs inside the moto server's own process (`python -m`); it ranks above deploy/
# because Lambda invokes there run the deployed code in local/'s sandbox and write the lines
# deploy/sandbox_logs.py formats (as Lambda writes them).
RANKS = {
    "target_scripts": 0,
    "core": 1,
    "config": 2,
    "build": 3,
    "checks": 4,
    "local": 4,
    "deploy": 5,
    "layer_trace": 5,
    "ops": 6,
    "local_aws_fixes": 6,
    "size_report": 6,
}


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, package_prefix: str, root: Path = REPO) -> set[str]:
    """Dotted names under `package_prefix` that `path` imports (anywhere in the file, TYPE_CHECKING
    blocks and imports inside functions included: a lazy import still ties two modules together)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
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
        found.update(n for n in names if n == package_prefix or n.startswith(package_prefix + "."))
    return found


def import_graph(files: Iterable[Path], package_prefix: str, root: Path = REPO) -> dict[str, set[str]]:
    """Module -> the modules it imports (a `from package import name` counts when name is a module)."""
    modules = {module_name(p, root): p for p in files}
    return {
        name: {m for m in imports_of(path, package_prefix, root) if m in modules and m != name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[str]:
    found = []
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def folder_loops(graph: dict[str, set[str]]) -> list[str]:
    """Loops among the children of each folder, a child folder standing for everything under it:
    files of one folder, or whole folders, that import each other in a circle."""
    loops = []
    folders = {".".join(name.split(".")[:end]) for name in graph for end in range(1, name.count(".") + 1)}
    for folder in sorted(folders):

        def child(module: str, folder: str = folder) -> str | None:
            if not module.startswith(folder + "."):
                return None
            return folder + "." + module[len(folder) + 1 :].split(".")[0]

        children: dict[str, set[str]] = {}
        for module, targets in graph.items():
            source = child(module)
            if source is None:
                continue
            children.setdefault(source, set())
            children[source] |= {c for t in targets if (c := child(t)) is not None and c != source}
        loops += cycles(children)
    return sorted(set(loops))


def engine_graph() -> dict[str, set[str]]:
    return import_graph(ENGINE.rglob("*.py"), "lambda_ml_layers")


def top_folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_engine_folder_has_a_rank() -> None:
    folders = {p.name for p in ENGINE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(RANKS), "add the new folder to RANKS, below everything that imports it"
    assert [p.name for p in ENGINE.glob("*.py")] == ["__init__.py"], "every module lives in a phase folder"


def test_no_folder_imports_a_folder_above_it_or_beside_it() -> None:
    upward = [
        f"{module} ({RANKS[top_folder(module)]}) imports {target} ({RANKS[top_folder(target)]})"
        for module, targets in engine_graph().items()
        if top_folder(module)
        for target in sorted(targets)
        if top_folder(target) != top_folder(module) and RANKS[top_folder(target)] >= RANKS[top_folder(module)]
    ]
    assert upward == []


def test_no_modules_or_folders_of_the_engine_import_each_other_in_a_loop() -> None:
    graph = engine_graph()
    assert cycles(graph) == []
    assert folder_loops(graph) == []


def test_no_service_package_has_an_import_loop() -> None:
    """Each function package is its own root on Lambda (its folder is the CodeUri)."""
    problems = []
    for package in sorted(p for p in SERVICES.glob("*/*") if (p / "__init__.py").is_file()):
        graph = import_graph(package.glob("*.py"), package.name, package.parent)
        problems += cycles(graph)
    assert problems == []


def test_shared_service_modules_import_only_each_other() -> None:
    """services/shared sits below the functions: each function package links its modules in, so a
    shared module that imported a function's own module would break every other function."""
    shared = SERVICES / "shared"
    own = {p.stem for p in shared.glob("*.py")}
    functions = {p.name for p in SERVICES.glob("*/*") if (p / "__init__.py").is_file()}
    problems = []
    for path in sorted(shared.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                targets = [node.module] if node.module else [alias.name for alias in node.names]
                problems += [f"{path.name} imports .{t}" for t in targets if t.split(".")[0] not in own]
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                problems += [f"{path.name} imports {n}" for n in names if n.split(".")[0] in functions]
    assert problems == []


def test_the_loop_finder_sees_a_loop_through_two_folders() -> None:
    """The checks above can fail: a loop that only shows at folder level is found."""
    graph = {"p.a.x": {"p.b.y"}, "p.b.y": set(), "p.b.z": {"p.a.w"}, "p.a.w": set()}
    assert cycles(graph) == []
    assert folder_loops(graph) == ["p.a -> p.b -> p.a"]


def test_report_and_gates_do_not_reach_back_into_the_build_story() -> None:
    graph = engine_graph()
    for module in ("report", "artifacts", "gates", "scheduler", "layer_steps"):
        assert "lambda_ml_layers.build.build_layers" not in graph[f"lambda_ml_layers.build.{module}"], module


def test_only_paths_py_spells_out_the_published_folder() -> None:
    """Code asks paths.BuildPaths where builds are published; docs may name the folder for users."""
    spelled = "build" + "/layers"  # not written out here either
    code = [
        *REPO.glob("*.py"),
        *(p for top in ("lambda_ml_layers", "tests", "benchmarks") for p in (REPO / top).rglob("*.py")),
    ]
    offenders = [
        str(p.relative_to(REPO)) for p in code if spelled in p.read_text() and p != ENGINE / "core" / "paths.py"
    ]
    assert offenders == []


# One job per module is the rule; size is only its smell. A module of 400-500 lines with one job is
# fine. Past this, a module has almost always picked up a second job (its docstring needs an "and"):
# split it by job, never into fragments that only make sense beside each other.
SMELLY_MODULE_LINES = 500


def test_no_engine_module_has_grown_past_the_size_where_it_usually_does_two_jobs() -> None:
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in ENGINE.rglob("*.py")}
    assert {path: lines for path, lines in sizes.items() if lines > SMELLY_MODULE_LINES} == {}


def test_the_linter_reads_every_engine_folder() -> None:
    """ruff's exclude of the top-level build/ once matched lambda_ml_layers/build/ too, so the
    build's own code went unlinted; every folder of the engine must be among the files ruff reads."""
    listed = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--show-files", "."], cwd=REPO, capture_output=True, text=True
    ).stdout.splitlines()
    linted = {Path(line).relative_to(ENGINE).parts[0] for line in listed if line.startswith(f"{ENGINE}/")}
    assert sorted(set(RANKS) - linted) == []
