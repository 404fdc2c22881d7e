"""`nox -s layer_tests` logic on tiny real layers: a strip rule that removes something a
module imports is caught even when the top-level import still works."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
from lambda_ml_layers.checks.layer_checks import LayerTestResult, module_name, run_layer_tests
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.core.errors import LayerTestFailed, VerifyError
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.runtimes import RUNTIMES
from tests.project_factory import HOST_ARCH, TinyProject, make_wheel, resolution_text, tiny_project, write_layer


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


BREAKING_RULE = '[[strip.rules]]\nname = "templates"\nwhy = "looked unused"\ndirectories = ["templates"]\n'


def test_the_build_s_verify_imports_every_module_so_a_deep_import_a_rule_broke_fails_the_build(tmp_path: Path) -> None:
    # The top-level import (all the build's verify did before) never touches deeppkg.report.
    with pytest.raises(VerifyError) as caught:
        layer_with_a_deep_import(tmp_path, BREAKING_RULE)
    assert "import deeppkg.report: ModuleNotFoundError: No module named 'deeppkg.templates'" in str(caught.value)
    assert caught.value.exit_code == 6


def test_a_strip_rule_deleting_an_imported_module_fails_naming_the_module(tmp_path: Path) -> None:
    # Exempt from the build's verify ([verify] skip_imports), the same breakage is layer_tests' to catch.
    rule = BREAKING_RULE + '\n[verify]\nskip_imports = ["deeppkg.report"]\n'
    with pytest.raises(LayerTestFailed) as caught:
        run(layer_with_a_deep_import(tmp_path, rule))
    [failure] = [line.strip() for line in str(caught.value).splitlines() if line.strip().startswith("import ")]
    assert failure.startswith("import deeppkg.report: ModuleNotFoundError")
    assert "imports fine unstripped" in failure
    assert caught.value.exit_code == 22


LAYER_TEMPLATE = """\
Resources:
  {logical}:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: {content_uri}
      CompatibleRuntimes: [python3.12]
      CompatibleArchitectures: [{arch}]
"""


def deploy_layers(project: TinyProject, *layers: str) -> None:
    """An infra/template.yaml that deploys these layers on python3.12 and this machine's arch."""
    (project.root / "infra").mkdir(exist_ok=True)
    text = "Resources:\n" + "".join(
        LAYER_TEMPLATE.format(
            logical=name.title().replace("-", "") + "Layer",
            content_uri=os.path.relpath(project.output_zip(name), project.root / "infra"),
            arch=project.arch,
        ).removeprefix("Resources:\n")
        for name in layers
    )
    (project.root / "infra" / "template.yaml").write_text(text)


def two_built_layers(tmp_path: Path) -> TinyProject:
    project = tiny_project(tmp_path)
    other = make_wheel(project.wheels_dir, "otherpkg", "1.0", {"otherpkg/__init__.py": "X = 1\n"})
    write_layer(project.root, "otherlayer", [other], "budget_mb = 10\n")
    tiny = make_wheel(project.wheels_dir, "tinypkg", "1.0.0", {"tinypkg/__init__.py": "X = 1\n"})
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([tiny, other]))
    write_layer(project.root, "tinylayer", [tiny], "budget_mb = 10\n")
    for name, package in (("tinylayer", "tinypkg"), ("otherlayer", "otherpkg")):
        (project.layer_dir(name) / "smoke_test.py").write_text(f"import {package}\nassert {package}.X == 1\n")
    deploy_layers(project, "tinylayer", "otherlayer")
    build_layers(BuildRequest(root=project.root, find_links=project.wheels_dir))
    return project


def layer_tests(project: TinyProject, ci: bool = False) -> list[LayerTestResult]:
    python = find_interpreter(RUNTIMES["python3.12"])
    return run_layer_tests(
        load_project(project.root), "python3.12", python, say=lambda _: None, find_links=project.wheels_dir, ci=ci
    )


def test_a_deployed_layer_whose_zip_was_deleted_fails_naming_it_and_the_build_command(tmp_path: Path) -> None:
    project = two_built_layers(tmp_path)
    project.output_zip("otherlayer").unlink()
    with pytest.raises(LayerTestFailed) as caught:
        layer_tests(project)
    message = str(caught.value)
    assert f"otherlayer: infra/template.yaml deploys it on python3.12/{HOST_ARCH}" in message
    assert f"{project.output_zip('otherlayer')} is missing" in message
    assert f"`inv build-layers --runtime python3.12 --arch {HOST_ARCH}`" in message
    assert "tinylayer" not in message  # the layer that is there was tested, and passed
    assert caught.value.exit_code == 22


def test_nothing_built_for_the_deployed_runtime_is_a_failure_not_an_empty_pass(tmp_path: Path) -> None:
    project = two_built_layers(tmp_path)
    shutil.rmtree(project.paths.published)
    with pytest.raises(LayerTestFailed, match=r"tinylayer: infra/template\.yaml deploys it"):
        layer_tests(project)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_corrupt_zip_names_the_zip_and_the_rebuild_command(tmp_path: Path, damage: str) -> None:
    project = two_built_layers(tmp_path)
    path = project.output_zip("tinylayer")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:  # change the stored file's bytes: Bad CRC-32 (or a deflate error) on extraction
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("python/tinypkg/__init__.pyc")
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        middle = start + info.compress_size // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    with pytest.raises(LayerTestFailed) as caught:
        layer_tests(project)
    message = str(caught.value)
    assert f"{path} is not a readable zip" in message
    assert f"`inv build-layers --runtime python3.12 --arch {HOST_ARCH} --force`" in message
    assert "otherlayer (" not in message  # the intact layer still passed


def test_a_failing_smoke_test_is_a_failure_with_its_output(tmp_path: Path) -> None:
    root = layer_with_a_deep_import(tmp_path)
    smoke = root / "layers" / "tinylayer" / "smoke_test.py"
    smoke.write_text("import json, sys\ncontext = json.loads(sys.argv[1])\nassert context['site'] == 'elsewhere'\n")
    with pytest.raises(LayerTestFailed) as caught:
        run(root)
    message = str(caught.value)
    assert "smoke test smoke_test.py failed:" in message
    assert "AssertionError" in message
