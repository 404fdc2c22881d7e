"""A stage's runtime and architecture (issue 22): the template's PythonRuntime and Architecture
parameters, set per stage in samconfig's parameter_overrides; the build and the deploy follow them."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from lambda_ml_layers.build.gates import apply_gates, needed_targets
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.config.stages import load_stage, stage_target, stage_targets
from lambda_ml_layers.config.template import (
    function_specs,
    load_template,
    target_parameters,
    template_layer_failures,
    template_layers,
)
from lambda_ml_layers.core.errors import ConfigError, InterpreterMissing, NotVerified
from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.core.runtimes import RUNTIMES
from lambda_ml_layers.core.toolchains import Toolchain
from lambda_ml_layers.deploy.deploy import DeployRequest, deploy, unverifiable_problem
from lambda_ml_layers.deploy.deploy_template import layer_uses, template_parameters, with_artifacts
from lambda_ml_layers.local.sandbox import EMULATED, Invocation, report_line, target_interpreter
from lambda_ml_layers.local_aws_fixes.lambda_sandboxes import pool_key

REPO = Path(__file__).resolve().parents[2]
DEFAULT = ("python3.12", "x86_64")
LOCAL_ARM64 = '"Stage=local PythonRuntime=python3.13 Architecture=arm64"'


def project(tmp_path: Path, local_overrides: str = LOCAL_ARM64) -> Path:
    """The repository's infra/ and layers/ (the real template, stages and layer settings), with the
    local stage's parameter_overrides replaced."""
    root = tmp_path / "project"
    for folder in ("infra", "layers"):
        shutil.copytree(REPO / folder, root / folder, symlinks=True)
    samconfig = root / "infra" / "samconfig.toml"
    text = samconfig.read_text()
    assert 'parameter_overrides = "Stage=local"' in text
    samconfig.write_text(
        text.replace('parameter_overrides = "Stage=local"', f"parameter_overrides = {local_overrides}")
    )
    return root


def test_the_repository_stages_all_run_the_defaults() -> None:
    """Nothing changes for CI: every stage of the checkout deploys python3.12 on x86_64."""
    assert stage_targets(REPO, DEFAULT) == {DEFAULT: ["local", "dev", "staging", "prod"]}


def test_a_build_for_a_target_no_stage_deploys_on_checks_only_its_layers(tmp_path: Path) -> None:
    """`nox -s arm64` builds core alone for python3.13/arm64: no stage deploys there, so the functions
    (whose other layers are not built for it) are not gated; once a stage deploys there, they are."""
    gates = apply_gates(load_project(REPO), {}, {}, "python3.13", "arm64", tmp_path, 0)
    assert gates.failures == [] and gates.totals == []
    assert any("No stage deploys on python3.13/arm64" in notice.message for notice in gates.notices)
    root = project(tmp_path)
    gates = apply_gates(load_project(root), {}, {}, "python3.13", "arm64", tmp_path, 0)
    assert any("has no built zip for python3.13/arm64" in failure for failure in gates.failures)


def test_a_stage_chooses_its_runtime_and_arch_in_parameter_overrides(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert stage_target(root, load_stage(root, "local"), DEFAULT) == ("python3.13", "arm64")
    assert stage_target(root, load_stage(root, "dev"), DEFAULT) == DEFAULT
    assert stage_targets(root, DEFAULT) == {("python3.13", "arm64"): ["local"], DEFAULT: ["dev", "staging", "prod"]}
    # `inv build-layers` without --runtime/--arch builds both, each with the stages needing it.
    assert needed_targets(root, load_project(root)) == stage_targets(root, DEFAULT)
    # The functions and layers follow the stage's values.
    parameters = load_stage(root, "local").parameters
    specs = function_specs(root / "infra" / "template.yaml", parameters)
    assert specs and {(spec.runtime, spec.arch) for spec in specs} == {("python3.13", "arm64")}
    layers = template_layers(load_template(root / "infra" / "template.yaml"), parameters).values()
    assert {(layer.runtimes, layer.arches) for layer in layers} == {(("python3.13",), ("arm64",))}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ('"Stage=local Architecture=arm65"', "Architecture=arm65 is not one of x86_64, arm64"),
        ('"Stage=local PythonRuntime=python3.10"', "PythonRuntime=python3.10 is not one of python3.11, python3.12"),
    ],
)
def test_a_target_the_template_does_not_allow_names_the_choices(tmp_path: Path, overrides: str, message: str) -> None:
    root = project(tmp_path, overrides)
    with pytest.raises(ConfigError, match=message) as caught:
        stage_target(root, load_stage(root, "local"), DEFAULT)
    assert "samconfig.toml [local.deploy.parameters]" in str(caught.value)


def test_an_arm64_stages_deploy_template_uploads_the_arm64_zips(tmp_path: Path) -> None:
    """What plan_deploy gives sam deploy: each layer at the stage's runtime-arch zip (not the
    template's default ContentUri folder), and CompatibleArchitectures arm64 with its parameters."""
    root = project(tmp_path)
    stage = load_stage(root, "local")
    template = load_template(root / "infra" / "template.yaml")
    parameters = template_parameters(template, stage.parameters)
    layers_dir = BuildPaths.of(root).output_dir(*stage_target(root, stage, DEFAULT))
    uses = layer_uses(template, layers_dir, parameters)
    assert {use.zip_path.parent for use in uses.values()} == {layers_dir.resolve()}
    assert layers_dir.name == "python3.13-arm64"
    derived = with_artifacts(template, {lid: use.zip_path for lid, use in uses.items()}, {})
    for logical_id, layer in template_layers(derived, parameters).items():
        assert Path(layer.content_uri) == layers_dir.resolve() / f"{layer.layer_name}.zip", logical_id
        assert (layer.runtimes, layer.arches) == (("python3.13",), ("arm64",)), logical_id


def test_a_build_for_a_stages_target_checks_the_template_on_that_target(tmp_path: Path) -> None:
    """The size gates of an arm64 python3.13 build check the functions as the stage deploys them,
    and the layers' ContentUri (the defaults' zip) is no failure there."""
    root = project(tmp_path)
    path = root / "infra" / "template.yaml"
    target = target_parameters(load_template(path), "python3.13", "arm64")
    assert target == {"PythonRuntime": "python3.13", "Architecture": "arm64"}
    assert {(spec.runtime, spec.arch) for spec in function_specs(path, target)} == {("python3.13", "arm64")}
    output_dir = BuildPaths.of(root).output_dir("python3.13", "arm64")
    assert template_layer_failures(path, "python3.13", "arm64", output_dir, target) == []
    # Declaring something else than what was built is still a failure.
    failures = template_layer_failures(path, "python3.13", "arm64", output_dir, {"Architecture": "x86_64"})
    assert any("CompatibleArchitectures ['x86_64']" in failure for failure in failures)


def test_a_stage_whose_layers_cannot_be_verified_names_the_runtimes_that_can() -> None:
    toolchain = Toolchain(
        "arm64",
        "aarch64",
        "/usr/bin/aarch64-linux-gnu-strip",
        None,
        emulated=True,
        missing=("no arm64 Python 3.12 to run under qemu here (none is packaged)",),
    )
    stage = SimpleNamespace(name="local")
    problem = unverifiable_problem(stage, "python3.12", toolchain, ["python3.11", "python3.13"])  # type: ignore[arg-type]
    assert problem is not None
    assert "Stage 'local' runs on arm64 python3.12" in problem
    assert "no arm64 Python 3.12 to run under qemu here" in problem
    assert "nothing was built or uploaded and the stage is as it was" in problem
    assert "set PythonRuntime=python3.13 (python3.11 or python3.13 can be verified for arm64 here)" in problem
    assert "infra/samconfig.toml [local.deploy.parameters] parameter_overrides" in problem
    verified = Toolchain("arm64", "aarch64", None, "/x/python3.13", emulated=True)
    assert unverifiable_problem(stage, "python3.13", verified, ["python3.13"]) is None  # type: ignore[arg-type]


def test_deploy_refuses_an_arm64_python312_stage_before_building_anything(tmp_path: Path) -> None:
    """No arm64 CPython 3.12 exists on this machine: the deploy stops with exit 31 before the
    stage lock, the build or any AWS call."""
    root = project(tmp_path, '"Stage=local PythonRuntime=python3.12 Architecture=arm64"')
    with pytest.raises(NotVerified) as caught:
        deploy(DeployRequest(root=root, stage="local", yes=True))
    assert caught.value.exit_code == 31
    assert "Stage 'local' runs on arm64 python3.12" in str(caught.value)
    assert "PythonRuntime=python3.13" in str(caught.value)
    assert not (root / "build").exists()


def test_an_arm64_function_runs_under_qemu_and_its_report_says_so() -> None:
    python, emulated = target_interpreter(RUNTIMES["python3.13"], "arm64")
    assert emulated and python.endswith("arm64/bin/python3.13")
    assert target_interpreter(RUNTIMES["python3.12"], "x86_64")[1] is False
    with pytest.raises(InterpreterMissing, match=r"cannot run a python3\.12 function on arm64 here"):
        target_interpreter(RUNTIMES["python3.12"], "arm64")
    run = Invocation(None, None, "", True, 2.5, 2.0, 0.25, 100.0, memory_size_mb=1024, emulated=True)
    line = report_line(run)
    assert f"Duration: 250.00 ms {EMULATED}" in line and f"Init Duration: 2500.00 ms {EMULATED}" in line
    assert EMULATED not in report_line(Invocation(None, None, "", True, 2.5, 2.0, 0.25, 100.0))


def test_the_emulators_lambda_keeps_one_environment_per_architecture() -> None:
    """moto's Invoke: a function moved to arm64 gets a new (qemu) environment, not the x86_64 one."""
    function = SimpleNamespace(
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        version="1",
        code_sha_256="abc",
        layers=[],
        handler="h.main",
        run_time="python3.13",
        memory_size=1024,
        timeout=30,
        environment_vars={},
        architectures=["x86_64"],
    )
    on_x86 = pool_key(function)
    function.architectures = ["arm64"]
    assert pool_key(function) != on_x86
