import os
from pathlib import Path

import pytest

from lambda_ml_layers.build.gates import check_function_packages
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.config.template import function_specs, package_files
from lambda_ml_layers.core.errors import ConfigError
from lambda_ml_layers.core.paths import BuildPaths
from tests.project_factory import REPO, tiny_project

TEMPLATE = """\
Parameters:
  Memory: {{Type: Number, Default: 2048}}
  Stage: {{Type: String}}
Globals:
  Function:
    Runtime: python3.12
    MemorySize: {memory}
    Environment:
      Variables: {{STAGE: !Ref Stage, CACHE: /tmp/c}}
Resources:
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties: {{ContentUri: {content_uri}}}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ../services/fn/
      Handler: fn.handler.main
      Timeout: 30
      Layers: [!Ref Layer]
      Environment:
        Variables: {{ONLY_HERE: "1"}}
"""


def write(tmp_path: Path, memory: str) -> Path:
    (tmp_path / "infra").mkdir()
    path = tmp_path / "infra" / "template.yaml"
    built = BuildPaths.of(tmp_path).output_dir("python3.12", "x86_64") / "core.zip"
    path.write_text(TEMPLATE.format(memory=memory, content_uri=os.path.relpath(built, tmp_path / "infra")))
    return path


def test_globals_merge_and_ref_to_a_parameter_default(tmp_path: Path) -> None:
    [spec] = function_specs(write(tmp_path, "!Ref Memory"))
    assert spec.memory_mb == 2048 and spec.timeout_s == 30 and spec.runtime == "python3.12"
    assert spec.layers == ("core",)
    assert spec.environment == {"CACHE": "/tmp/c", "ONLY_HERE": "1"}  # !Ref Stage is only known at deploy
    assert spec.code_dir == (tmp_path / "services" / "fn").resolve()


def test_an_intrinsic_the_build_cannot_know_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Fn MemorySize is .*Fn::If.*literal, or !Ref to a parameter with a Default"):
        function_specs(write(tmp_path, "!If [Big, 4096, 1024]"))
    with pytest.raises(ConfigError, match="Fn MemorySize is"):
        (tmp_path / "x").mkdir()
        function_specs(write(tmp_path / "x", "!Ref Stage"))  # a parameter without a Default


def test_package_leaves_out_tests_caches_and_locks() -> None:
    files = {rel for rel, _ in package_files(REPO / "services" / "predictions")}
    assert "predictions/handler.py" in files
    assert not any(rel.startswith("tests/") or "__pycache__" in rel or rel.startswith("requirements") for rel in files)


def test_a_layer_listed_twice_on_a_function_is_its_own_error(tmp_path: Path) -> None:
    path = write(tmp_path, "1024")
    path.write_text(path.read_text().replace("Layers: [!Ref Layer]", "Layers: [!Ref Layer, !Ref Layer]"))
    with pytest.raises(ConfigError) as error:
        function_specs(path)
    assert "function Fn lists layer Layer (core) more than once in its Layers. Fix: list each layer once." in str(
        error.value
    )


TINY_TEMPLATE = """\
Resources:
  TinyLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: OUT/tinylayer.zip}
  GhostLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: OUT/tinylayr.zip}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      {CodeUri: ../services/fn/, Handler: h.main, Runtime: python3.12, Layers: [!Ref TinyLayer, !Ref GhostLayer]}
"""


def test_a_template_layer_no_layer_folder_defines_is_refused_before_building(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    (project.root / "infra").mkdir()
    out = os.path.relpath(BuildPaths.of(project.root).output_dir("python3.12", "x86_64"), project.root / "infra")
    (project.root / "infra" / "template.yaml").write_text(TINY_TEMPLATE.replace("OUT", out))
    (project.root / "services" / "fn").mkdir(parents=True)
    (project.root / "services" / "fn" / "requirements.in").write_text("# the layers provide everything\n")
    with pytest.raises(ConfigError) as error:
        check_function_packages(load_project(project.root))
    message = str(error.value)
    assert f"GhostLayer (ContentUri '{out}/tinylayr.zip') is layer 'tinylayr'" in message
    assert "no layer folder defines it: there is no layers/tinylayr/layer.toml" in message
    assert "Perhaps you meant 'tinylayer'?" in message
    assert "Known layers: tinylayer." in message
    assert "inv build-layers" not in message
