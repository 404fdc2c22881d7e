"""On Lambda, a handler that reaches a pruned module at run time (as unpickling a model does) logs
the sandbox's ModulePruned message and fix, not "unexpected ModuleNotFoundError": the pruned layer
ships its list (python/.pruned-modules/<layer>.json) and services/shared/pruned_modules.py reads it.
The handler runs in python3.12 on the built zip extracted as Lambda would (sys.path as on Lambda), beside
the real aws-utilities layer every function carries (runtime.py logs through its Powertools)."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from lambda_ml_layers.build.pruning.contract import invocation_fix
from lambda_ml_layers.build.pruning.step import pruned_layer_beside
from lambda_ml_layers.build.target_imports import lambda_sys_path
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.runtimes import RUNTIMES
from tests.integration.test_real_layers import OUTPUT, inv_build
from tests.project_factory import REPO
from tests.unit.test_prune_build import PRUNE, build, pruned_project

HANDLER = """
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
from predictions import runtime

@runtime.lambda_entry("ScorerFunction", runtime.Logger("scorer"))
def handler(event, context):
    import tinypkg.unused.big  # what a model's unpickling does: a module only the run reaches
try:
    handler({"bucket": "b", "key": "k"}, None)
except ModuleNotFoundError as exc:
    print("raised", exc.name)
"""


@pytest.fixture(scope="module", autouse=True)
def built_layers() -> None:
    inv_build()  # a no-op when the checkout's layers are built and current


def run_on_lambda(opt: Path, missing: str) -> list[dict[str, object]]:
    with zipfile.ZipFile(OUTPUT / "aws-utilities.zip") as archive:
        archive.extractall(opt)  # Lambda extracts every layer of the function into /opt
    python = find_interpreter(RUNTIMES["python3.12"])
    paths = [str(REPO / "services" / "predictions"), *lambda_sys_path(opt, RUNTIMES["python3.12"])]
    result = subprocess.run(
        [python, "-I", "-S", "-B", "-c", HANDLER, json.dumps(paths)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == f"raised {missing}"  # still an error Lambda counts
    return [json.loads(line) for line in lines[:-1] if '"level"' in line]


def test_a_pruned_module_reached_at_run_time_logs_the_sandbox_s_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = pruned_project(tmp_path)
    build(project)
    zip_path = project.output_zip("tinylayer")
    with zipfile.ZipFile(zip_path) as archive:
        shipped = json.loads(archive.read("python/.pruned-modules/tinylayer.json"))
        archive.extractall(tmp_path / "opt")
    assert shipped["pruned_modules"] == ["tinypkg.unused"]
    assert str(tmp_path) not in json.dumps(shipped)  # the zip does not depend on where the checkout lies

    [log] = [line for line in run_on_lambda(tmp_path / "opt", "tinypkg.unused") if line["level"] == "ERROR"]
    monkeypatch.chdir(project.root)  # the sandbox prints paths relative to the project, as inv runs there
    layer = pruned_layer_beside(zip_path)
    assert layer is not None
    sandbox = invocation_fix({"errorType": "Runtime"}, None, "No module named 'tinypkg.unused'", [layer])
    assert log["error_type"] == "ModulePruned" and log["module"] == "tinypkg.unused"
    assert log["layer"] == "tinylayer"
    assert log["message"] == sandbox
    assert "layers/tinylayer/layer.toml:5" in str(log["message"])


def test_whole_layers_ship_no_list_and_the_error_stays_unexpected(tmp_path: Path) -> None:
    project = pruned_project(tmp_path, PRUNE.replace("[prune]\n", "[prune]\nenabled = false\n"))
    build(project)
    with zipfile.ZipFile(project.output_zip("tinylayer")) as archive:
        assert not [name for name in archive.namelist() if ".pruned-modules" in name]
        archive.extractall(tmp_path / "opt")
    (tmp_path / "opt" / "python" / "tinypkg" / "unused" / "big.pyc").unlink()  # a module missing, not pruned
    [log] = [line for line in run_on_lambda(tmp_path / "opt", "tinypkg.unused.big") if line["level"] == "ERROR"]
    assert log["error_type"] == "Unexpected"
