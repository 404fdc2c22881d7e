import os
from pathlib import Path

import pytest

from lambda_ml_layers.errors import ConfigError
from lambda_ml_layers.paths import BuildPaths
from lambda_ml_layers.sam_template import function_specs, package_files
from tests.project_factory import REPO

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
