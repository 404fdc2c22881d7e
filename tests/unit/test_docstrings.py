"""[build] docstrings = "strip": bytecode without docstrings, asserts and line numbers kept."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.build.bytecode import compile_bytecode
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.core.errors import ConfigError
from lambda_ml_layers.target_scripts import script
from tests.project_factory import tiny_project

MODULE = '''"""The module's docstring."""


def checked(x):
    """A docstring that -OO would drop, along with the assert below."""
    assert x > 0, "x must be positive"
    return x


def only_a_docstring():
    """Nothing else in the body."""


class Thing:
    """A class docstring."""

    value = f"{1}"  # an f-string is no docstring


def fails():
    """Line numbers must survive."""
    raise ValueError("the raise")
'''


def _load(path: Path, name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("policy", ["sourceless", "pyc"])
def test_docstrings_go_asserts_and_line_numbers_stay(tmp_path: Path, policy: str) -> None:
    site = tmp_path / "site"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "mod.py").write_text(MODULE)
    result = compile_bytecode(site, sys.executable, policy, "/opt/python", docstrings="strip")
    if policy == "sourceless":
        assert not (site / "pkg" / "mod.py").exists() and result.files_removed == 1
        compiled = site / "pkg" / "mod.pyc"
    else:
        compiled = Path(importlib.util.cache_from_source(str(site / "pkg" / "mod.py")))
    module = _load(compiled, f"mod_{policy}")
    assert module.__doc__ is None and module.checked.__doc__ is None and module.Thing.__doc__ is None
    assert module.only_a_docstring() is None
    assert module.Thing.value == "1"
    with pytest.raises(AssertionError, match="x must be positive"):
        module.checked(-1)  # unlike -OO, the assert runs
    with pytest.raises(ValueError) as error:
        module.fails()
    raise_line = MODULE.splitlines().index('    raise ValueError("the raise")') + 1
    assert error.traceback[-1].lineno + 1 == raise_line  # pytest counts from 0
    assert str(error.traceback[-1].path) == "/opt/python/pkg/mod.py"


def test_keep_compiles_docstrings_in(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "mod.py").write_text(MODULE)
    compile_bytecode(site, sys.executable, "sourceless", "/opt/python")
    assert _load(site / "mod.pyc", "mod_keep").checked.__doc__.startswith("A docstring")


def test_a_file_that_does_not_compile_stays_as_source(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "good.py").write_text(MODULE)
    (site / "bad.py").write_text("def broken(:\n")
    result = compile_bytecode(site, sys.executable, "sourceless", "/opt/python", docstrings="strip")
    assert (site / "bad.py").exists() and not (site / "good.py").exists()
    assert any("bad.py" in note for note in result.notes)


def test_the_script_runs_alone_in_an_isolated_interpreter(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(MODULE)
    command = [sys.executable, "-I", script("docstring_free_compile"), str(tmp_path), "/opt/python", "sourceless"]
    report = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert report["compiled"] == ["m.py"] and report["docstrings_removed"] == 5


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        ('docstrings = "maybe"', "docstrings 'maybe' is not one of keep, strip"),
        ('bytecode = "source"\ndocstrings = "strip"', 'docstrings = "strip" needs bytecode'),
    ],
)
def test_bad_docstrings_setting_names_the_file_and_fix(tmp_path: Path, build: str, expected: str) -> None:
    project = tiny_project(tmp_path, layer_toml=f"budget_mb = 10\n[build]\n{build}\n")
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    assert expected in str(error.value)
    assert "tinylayer/layer.toml" in str(error.value)


def test_docstrings_default_to_keep(tmp_path: Path) -> None:
    project = load_project(tiny_project(tmp_path).root)
    assert project.layers[0].docstrings == "keep"
