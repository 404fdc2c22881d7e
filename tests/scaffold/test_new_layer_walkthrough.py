"""docs/new-layer-and-function.md, followed in a temp copy of the repository on a tiny pure-Python
package (tabulate, from PyPI): `inv new-layer`, `inv new-function`, then everything the checks ask
for (`inv build-layers`, `inv layer-modules`, `inv trace-layers`, `nox -s template_lint
layer_tests-3.12`), and the new function run in the Lambda sandbox.

Slow (23 minutes on the shared 2-core machine: it locks, builds and traces every layer), so it runs in its own
session, `nox -s scaffold_walkthrough`, not in `-t ci`.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.config.template import function_specs
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.core.runtimes import RUNTIMES
from lambda_ml_layers.local.sandbox import LambdaSandbox, smoke_event
from tests.project_factory import REPO

RUNTIME = RUNTIMES["python3.12"]
# What the project's venvs and interpreters need beside the tracked files.
BESIDE = (".venv", ".venv-sam", ".python-version")


def copy_of_the_repo(target: Path) -> Path:
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        source = REPO / name
        if source.exists() or source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name, follow_symlinks=False)
    for name in BESIDE:
        if (REPO / name).is_dir():
            (target / name).symlink_to((REPO / name).resolve())
        elif (REPO / name).exists():
            shutil.copy2(REPO / name, target / name)
    if (REPO / "build" / "cache").is_dir():  # the build cache spares rebuilding unchanged layers
        shutil.copytree(REPO / "build" / "cache", target / "build" / "cache", symlinks=True)
    return target


def run(root: Path, *command: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, (
        f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout + result.stderr


@pytest.mark.timeout(3600)  # the project's 900 s is for one step; this is every step, twice built
def test_a_new_layer_and_function_pass_every_check_and_run(tmp_path: Path) -> None:
    root = copy_of_the_repo(tmp_path / "repo")
    inv = str(root / ".venv" / "bin" / "inv")
    before = (root / "infra" / "template.yaml").read_text()

    run(root, inv, "new-layer", "tiny-tables", "--package", "tabulate")
    assert "tabulate==" in (root / "layers" / "tiny-tables" / "requirements.txt").read_text()
    run(root, inv, "new-function", "table_report", "--layers", "core-data-science,tiny-tables")
    after = (root / "infra" / "template.yaml").read_text()
    edits = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), autojunk=False).get_opcodes()
    assert {tag for tag, *_ in edits} == {"equal", "insert"}  # lines added, none changed or removed

    run(root, inv, "build-layers")
    run(root, inv, "layer-modules")
    modules = json.loads((root / "services" / "shared" / "layer_modules.json").read_text())["modules"]
    assert modules["tabulate"] == "TinyTablesLayer"
    run(root, inv, "trace-layers")
    assert "tabulate" in (root / "layers" / "tiny-tables" / "trace.txt").read_text()
    run(root, sys.executable, "-m", "nox", "-s", "lock_check", "template_lint", "layer_tests-3.12")

    spec = next(s for s in function_specs(root / "infra" / "template.yaml") if s.name == "TableReportFunction")
    assert spec.layers == ("core-data-science", "tiny-tables")
    zips = [BuildPaths.of(root).output_dir("python3.12", "x86_64") / f"{layer}.zip" for layer in spec.layers]
    with LambdaSandbox(spec, zips, find_interpreter(RUNTIME), RUNTIME) as sandbox:
        smoke = sandbox.invoke(smoke_event())
        assert smoke.ok and smoke.result == {"status": "smoke", "function": "TableReport"}, smoke.logs[-2000:]
        ran = sandbox.invoke({"rows": 3})
        assert ran.ok and ran.result == {"status": "ok"}, ran.logs[-2000:]
