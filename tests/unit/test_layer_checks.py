"""`nox -s layer_tests` logic on tiny real layers: a strip rule that removes something a
module imports is caught even when the top-level import still works."""

from __future__ import annotations

from pathlib import Path

from lambda_ml_layers.build import BuildRequest, build_layers
from lambda_ml_layers.config import load_project
from lambda_ml_layers.interpreters import find_interpreter
from lambda_ml_layers.layer_checks import module_name, run_layer_tests
from lambda_ml_layers.runtimes import RUNTIMES
from tests.project_factory import make_wheel, resolution_text, tiny_project, write_layer


def test_module_names_follow_import_rules() -> None:
    assert module_name("pkg/__init__.pyc") == "pkg"
    assert module_name("pkg/sub/mod.py") == "pkg.sub.mod"
    assert (
        module_name("numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so") == "numpy._core._multiarray_umath"
    )
    assert module_name("pkg/__main__.py") is None
    assert module_name("pkg/__pycache__/mod.cpython-312.pyc") is None
    assert module_name("numpy.libs/libopenblas.so") is None
    assert module_name("pkg/data/descr.rst") is None


def layer_with_a_deep_import(tmp_path: Path, extra_rule: str = "") -> Path:
    project = tiny_project(tmp_path)
    wheel = make_wheel(
        project.wheels_dir,
        "deeppkg",
        "1.0",
        {
            "deeppkg/__init__.py": "VERSION = 1\n",  # the top-level import never touches report
            "deeppkg/report.py": "from deeppkg.templates.page import PAGE\n",
            "deeppkg/templates/__init__.py": "",
            "deeppkg/templates/page.py": "PAGE = '<html>'\n",
        },
    )
    write_layer(project.root, "tinylayer", [wheel], "budget_mb = 10\n" + extra_rule)
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([wheel]))
    (project.layer_dir("tinylayer") / "smoke_test.py").write_text("import deeppkg\nassert deeppkg.VERSION == 1\n")
    build_layers(BuildRequest(root=project.root, find_links=project.wheels_dir))
    return project.root


def run(root: Path) -> list[str]:
    python = find_interpreter(RUNTIMES["python3.12"])
    [result] = run_layer_tests(
        load_project(root), "python3.12", python, say=lambda message: None, find_links=root.parent / "wheels"
    )
    assert result.modules_checked >= 4
    return result.failures


def test_intact_layer_passes(tmp_path: Path) -> None:
    assert run(layer_with_a_deep_import(tmp_path)) == []


def test_a_strip_rule_deleting_an_imported_module_fails_naming_the_module(tmp_path: Path) -> None:
    rule = '[[strip.rules]]\nname = "templates"\nwhy = "looked unused"\ndirectories = ["templates"]\n'
    failures = run(layer_with_a_deep_import(tmp_path, rule))
    assert len(failures) == 1
    assert failures[0].startswith("import deeppkg.report: ModuleNotFoundError")
    assert "imports fine unstripped" in failures[0]


def test_a_failing_smoke_test_is_a_failure_with_its_output(tmp_path: Path) -> None:
    root = layer_with_a_deep_import(tmp_path)
    smoke = root / "layers" / "tinylayer" / "smoke_test.py"
    smoke.write_text("import json, sys\ncontext = json.loads(sys.argv[1])\nassert context['site'] == 'elsewhere'\n")
    failures = run(root)
    assert len(failures) == 1
    assert failures[0].startswith("smoke test smoke_test.py failed:")
    assert "AssertionError" in failures[0]
