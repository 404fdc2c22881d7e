"""A function whose code folder or handler module is missing is refused before anything is built."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lambda_ml_layers.build.function_code import function_code_problems, handler_module_files
from lambda_ml_layers.core.errors import ConfigError
from tests.project_factory import tiny_project
from tests.unit.test_build_offline import build, with_function


def test_handler_names_a_module_or_a_package() -> None:
    assert handler_module_files("pkg.handler.main") == ("pkg/handler.py", "pkg/handler/__init__.py")
    assert handler_module_files("app.main") == ("app.py", "app/__init__.py")
    for malformed in ("main", "", "app.", ".main", "my-app.main", "a..b.main"):
        assert handler_module_files(malformed) is None, malformed


def test_each_missing_part_is_named(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    assert "not a folder" in function_code_problems("F", tmp_path / "gone", "app.main", template)[0]
    assert "needs `module.function`" in function_code_problems("F", tmp_path, "main", template)[0]
    [problem] = function_code_problems("F", tmp_path, "app.main", template)
    assert f"needs {tmp_path / 'app.py'}" in problem
    (tmp_path / "app.py").write_text("def main(event, context): ...\n")
    assert function_code_problems("F", tmp_path, "app.main", template) == []


def test_missing_code_folder_is_refused_not_asked_for_a_requirements_in(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    with_function(project, "# everything comes from the layer\n")
    shutil.rmtree(project.root / "services" / "tiny")
    with pytest.raises(ConfigError, match=r"TinyFunction has CodeUri .* which is not a folder") as raised:
        build(project)
    assert "requirements.in" not in str(raised.value)
    assert not project.output_zip("tinylayer").parent.exists()


def test_missing_handler_module_is_refused(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    with_function(project, "# everything comes from the layer\n")
    (project.root / "services" / "tiny" / "tiny" / "handler.py").unlink()
    with pytest.raises(ConfigError, match=r"Handler 'tiny\.handler\.main' needs"):
        build(project)
