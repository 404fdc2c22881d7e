"""`inv new-layer` / `inv new-function` on a copy of the project's layers, services and template:
what they write, what they refuse, and that a failure leaves nothing behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lambda_ml_layers.build.scaffold import NewFunction, NewLayer, new_function, new_layer
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.config.template import function_specs, load_template, parse_template
from lambda_ml_layers.core.errors import ConfigError, LockError
from lambda_ml_layers.core.paths import BuildPaths
from tests.project_factory import REPO


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "layers", root / "layers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "services", root / "services", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "infra").mkdir()
    for name in ("template.yaml", "samconfig.toml", "stages.toml"):
        if (REPO / "infra" / name).exists():
            shutil.copy(REPO / "infra" / name, root / "infra" / name)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_lock(folder: Path) -> None:
    (folder / "requirements.txt").write_text("#\n# pip-compile output for an empty requirements.in\n#\n")


def quiet(_: str) -> None:
    pass


def test_new_function_scaffolds_its_package_lock_and_template_resources(project: Path) -> None:
    before = load_template(project / "infra" / "template.yaml")
    new_function(NewFunction(project, "scoring", ("aws-utilities", "core-data-science")), write_lock, quiet)

    package = project / "services" / "scoring" / "scoring"
    assert (package / "runtime.py").resolve() == (project / "services" / "shared" / "runtime.py").resolve()
    assert (package / "layer_modules.json").resolve() == (project / "services/shared/layer_modules.json").resolve()
    handler = (package / "handler.py").read_text()
    assert "import boto3" in handler and "import pandas" in handler and "@lambda_entry" in handler
    compile(handler, "handler.py", "exec")
    assert (project / "services" / "scoring" / "requirements.txt").exists()

    after = load_template(project / "infra" / "template.yaml")
    (spec,) = [s for s in function_specs(project / "infra" / "template.yaml") if s.name == "ScoringFunction"]
    # Base layer first, whatever order --layers gave: Lambda extracts layers in order.
    assert spec.layers == ("core-data-science", "aws-utilities")
    assert spec.handler == "scoring.handler.lambda_handler" and spec.code_dir == project / "services" / "scoring"
    props = after["Resources"]["ScoringFunction"]["Properties"]
    assert props["AutoPublishCodeSha256"] == {"Ref": "ScoringLayersSha256"}
    assert props["ReservedConcurrentExecutions"] == 10  # the deploy's checkov gate refuses a function without
    assert "ScoringLayersSha256" in after["Parameters"]
    assert {"ScoringFunctionArn", "ScoringAliasArn"} <= set(after["Outputs"])
    alarms = {k for k, r in after["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm" and "Scoring" in k}
    assert alarms == {f"Scoring{kind}Alarm" for kind in ("Errors", "Throttles", "Duration", "InitDuration")}
    # The rest of the template is untouched.
    assert {k: v for k, v in after["Resources"].items() if not k.startswith("Scoring")} == before["Resources"]
    assert {k: v for k, v in after["Outputs"].items() if not k.startswith("Scoring")} == before["Outputs"]


@pytest.mark.parametrize(
    ("name", "layers", "expected"),
    [
        ("merge", ("core-data-science",), "services/merge/ exists already"),
        ("Scoring", ("core-data-science",), "not allowed"),
        ("shared", ("core-data-science",), "services/shared/ exists already"),
        ("scoring", ("gbm-libraries",), "'gbm-libraries', which is no layer of infra/template.yaml"),
        ("scoring", ("core-data-sciense",), "Perhaps you meant 'core-data-science'?"),
        ("scoring", ("ml-libraries",), "Fix: add core-data-science to --layers"),
        ("scoring", (), "Name the function's layers"),
    ],
)
def test_new_function_refuses_bad_requests_and_writes_nothing(
    project: Path, name: str, layers: tuple[str, ...], expected: str
) -> None:
    before = snapshot(project)
    with pytest.raises(ConfigError, match="Cannot scaffold function") as raised:
        new_function(NewFunction(project, name, layers), write_lock, quiet)
    assert expected in str(raised.value) and raised.value.exit_code == 2
    assert snapshot(project) == before


def test_new_layer_scaffolds_its_files_and_template_resource(project: Path) -> None:
    before = load_template(project / "infra" / "template.yaml")
    locked: list[Path] = []

    def lock(root: Path) -> None:
        locked.append(root)
        write_lock(root / "layers" / "gbm-libraries")

    new_layer(NewLayer(project, "gbm-libraries", ("lightgbm", "xgboost-cpu"), ("ml-libraries",)), lock, quiet)

    assert locked == [project]
    layer = load_project(project).layer("gbm-libraries")
    assert layer.base_layers == ("ml-libraries",)
    assert layer.docstrings == "keep"  # lightgbm reads its own __doc__ at import
    assert layer.requirements_in.read_text() == "lightgbm\nxgboost-cpu\n"
    smoke = (layer.folder / "smoke_test.py").read_text()
    assert '"xgboost-cpu": "xgboost"' in smoke and '"lightgbm": "lightgbm"' in smoke
    after = load_template(project / "infra" / "template.yaml")
    props = after["Resources"]["GbmLibrariesLayer"]["Properties"]
    built = BuildPaths.of(project).output_dir("python3.12", "x86_64") / "gbm-libraries.zip"
    assert props["ContentUri"] == os.path.relpath(built, project / "infra")
    # It follows the stage's runtime and architecture, as the other layers do.
    assert props["CompatibleRuntimes"] == [{"Ref": "PythonRuntime"}] and props["RetentionPolicy"] == "Retain"
    assert props["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert after["Outputs"]["GbmLibrariesLayerArn"] == {"Value": {"Ref": "GbmLibrariesLayer"}}
    assert {k: v for k, v in after["Resources"].items() if k != "GbmLibrariesLayer"} == before["Resources"]
    # Then a function can use it, its base layers first.
    new_function(
        NewFunction(project, "scoring", ("gbm-libraries", "ml-libraries", "core-data-science")), write_lock, quiet
    )
    (spec,) = [s for s in function_specs(project / "infra" / "template.yaml") if s.name == "ScoringFunction"]
    assert spec.layers == ("core-data-science", "ml-libraries", "gbm-libraries")
    assert "import lightgbm" in (project / "services/scoring/scoring/handler.py").read_text()


@pytest.mark.parametrize(
    ("name", "packages", "base", "expected"),
    [
        ("ml-libraries", ("lightgbm",), (), "layers/ml-libraries/ exists already"),
        ("GBM", ("lightgbm",), (), "not allowed"),
        ("gbm", ("lightgbm",), ("ml-libaries",), "Perhaps you meant 'ml-libraries'?"),
        ("gbm", ("light gbm!",), (), "not a requirement pip understands"),
        ("gbm", (), (), "Name at least one package"),
    ],
)
def test_new_layer_refuses_bad_requests_and_writes_nothing(
    project: Path, name: str, packages: tuple[str, ...], base: tuple[str, ...], expected: str
) -> None:
    before = snapshot(project)
    with pytest.raises(ConfigError, match="Cannot scaffold layer") as raised:
        new_layer(NewLayer(project, name, packages, base), lambda root: None, quiet)
    assert expected in str(raised.value)
    assert snapshot(project) == before


def test_a_failed_lock_leaves_the_project_as_it_was(project: Path) -> None:
    before = snapshot(project)

    def lock_that_half_writes_then_fails(root: Path) -> None:
        # As `nox -s lock` would: the resolution and some locks rewritten before pip gives up.
        (root / "layers" / "resolution.txt").write_text("half\n")
        (root / "layers" / "gbm" / "requirements.txt").write_text("half\n")
        raise LockError("pip-compile failed: No matching distribution found for lightgbmx")

    with pytest.raises(LockError, match="Cannot lock layer 'gbm' with lightgbmx") as raised:
        new_layer(NewLayer(project, "gbm", ("lightgbmx",), ()), lock_that_half_writes_then_fails, quiet)
    assert "No matching distribution found for lightgbmx" in str(raised.value)
    assert snapshot(project) == before
    assert not (project / "layers" / "gbm").exists()


def test_a_lock_session_that_writes_no_lock_is_a_failure(project: Path) -> None:
    before = snapshot(project)
    with pytest.raises(LockError, match=r"wrote no layers/gbm/requirements\.txt"):
        new_layer(NewLayer(project, "gbm", ("lightgbm",), ()), lambda root: None, quiet)  # nox: "session skipped"
    assert snapshot(project) == before


def test_an_interrupted_function_scaffold_leaves_nothing(project: Path) -> None:
    before = snapshot(project)

    def interrupted(folder: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        new_function(NewFunction(project, "scoring", ("core-data-science",)), interrupted, quiet)
    assert snapshot(project) == before and not (project / "services" / "scoring").exists()


def test_the_template_edit_parses_with_every_original_resource_unchanged() -> None:
    from lambda_ml_layers.build.scaffold_rules import append_to_section

    text = "A:\n  x: 1\n\n# about B\nB:\n  y: 2\n"
    edited = append_to_section(text, "A", "  z: 3\n")
    assert parse_template(edited) == {"A": {"x": 1, "z": 3}, "B": {"y": 2}}
    assert edited.index("z: 3") < edited.index("# about B")
    assert parse_template(append_to_section(text, "C", "  w: 4\n"))["C"] == {"w": 4}


def test_the_scaffolded_handler_fits_the_line_length_with_five_layers() -> None:
    from lambda_ml_layers.build.scaffold_rules import function_files

    ids = ["CoreDataScienceLayer", "MLLibrariesLayer", "GbmLibrariesLayer", "AWSUtilitiesLayer", "ArrowLayer"]
    handler = function_files("gbm_scoring", ids, ["numpy"]).handler
    assert max(len(line) for line in handler.splitlines()) <= 120  # ruff's limit in pyproject.toml
    assert "ArrowLayer" in handler
