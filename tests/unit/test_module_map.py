"""The one module-to-layer map: derived from the built zips, generated into
services/shared/layer_modules.json, and refused when it no longer matches them."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
from lambda_ml_layers.checks.module_map import (
    MODULE_MAP,
    check_layer_modules,
    derive_map,
    module_layers,
    top_level_modules,
    write_layer_modules,
)
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.config.template import load_template, template_layers
from lambda_ml_layers.core.errors import LayerToolError, LockError
from tests.project_factory import REPO, TinyProject, make_wheel, resolution_text, tiny_project, write_layer


def test_top_level_modules_of_a_layer_zip() -> None:
    names = [
        "python/numpy/__init__.pyc",
        "python/numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so",
        "python/numpy.libs/libopenblas.so",
        "python/numpy-2.5.5.dist-info/METADATA",
        "python/six.pyc",
        "python/dateutil/parser/__init__.pyc",
        "python/lib/python3.12/site-packages/yaml/__init__.py",
        "python/bin/f2py",
    ]
    assert top_level_modules(names, "python3.12") == {"numpy", "six", "dateutil", "yaml"}


def test_one_module_in_two_layers_is_refused() -> None:
    with pytest.raises(LayerToolError, match="module 'six' is in both core and aws"):
        module_layers({"core": {"six", "numpy"}, "aws": {"six"}}, {})


def test_logical_ids_name_the_layers_and_an_undeployed_layer_keeps_its_folder_name() -> None:
    mapped = module_layers({"core": {"numpy"}, "extra": {"yaml"}}, {"core": "CoreLayer"})
    assert mapped == {"numpy": "CoreLayer", "yaml": "extra"}


def two_layer_project(tmp_path: Path) -> TinyProject:
    project = tiny_project(tmp_path)
    other = make_wheel(project.wheels_dir, "other-dist", "1.0", {"othermod/__init__.py": "", "helper.py": ""})
    write_layer(project.root, "otherlayer", [other], "budget_mb = 10\n")
    tiny = make_wheel(project.wheels_dir, "tinypkg", "1.0.0", {"tinypkg/__init__.py": "X = 1\n"})
    write_layer(project.root, "tinylayer", [tiny], "budget_mb = 10\n")
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([tiny, other]))
    (project.root / "infra").mkdir()
    uri = os.path.relpath(project.output_zip("tinylayer"), project.root / "infra")
    (project.root / "infra" / "template.yaml").write_text(
        "Resources:\n  TinyLayer:\n    Type: AWS::Serverless::LayerVersion\n    Properties:\n"
        f"      ContentUri: {uri}\n      CompatibleRuntimes: [python3.12]\n"
        f"      CompatibleArchitectures: [{project.arch}]\n"
    )
    (project.root / "services" / "shared").mkdir(parents=True)
    build_layers(BuildRequest(root=project.root, find_links=project.wheels_dir))
    return project


def test_the_map_comes_from_the_built_zips_and_a_stale_copy_is_refused(tmp_path: Path) -> None:
    project = two_layer_project(tmp_path)
    config = load_project(project.root)
    # Module names, not distribution names: other-dist provides othermod and helper.
    assert derive_map(config) == {"helper": "otherlayer", "othermod": "otherlayer", "tinypkg": "TinyLayer"}
    written = write_layer_modules(config)
    assert json.loads(written.read_text())["modules"]["tinypkg"] == "TinyLayer"
    check_layer_modules(config)
    written.write_text(written.read_text().replace('"TinyLayer"', '"OtherLayer"'))
    with pytest.raises(LockError, match=r"does not match the built layers .* Fix: `inv layer-modules`"):
        check_layer_modules(config)
    project.output_zip("otherlayer").unlink()
    with pytest.raises(
        LayerToolError, match=r"otherlayer\.zip is missing.*Fix: `inv build-layers --runtime python3\.12"
    ):
        check_layer_modules(config)


def test_the_committed_map_names_template_layers_and_covers_every_handler_layer_import() -> None:
    committed = json.loads((REPO / MODULE_MAP).read_text())["modules"]
    logical_ids = {
        layer.logical_id for layer in template_layers(load_template(REPO / "infra" / "template.yaml")).values()
    }
    assert set(committed.values()) <= logical_ids
    imported = set()
    for handler in sorted((REPO / "services").glob("*/*/handler.py")):
        for node in ast.walk(ast.parse(handler.read_text())):
            if isinstance(node, ast.With) and "layer_imports" in ast.unparse(node.items[0].context_expr):
                for statement in node.body:
                    if isinstance(statement, ast.Import):
                        imported |= {alias.name.split(".")[0] for alias in statement.names}
                    elif isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
                        imported.add(statement.module.split(".")[0])
    assert imported >= {"numpy", "pandas", "boto3"}
    assert imported <= set(committed), sorted(imported - set(committed))
