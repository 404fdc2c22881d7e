"""Real builds of tiny layers from local wheels: every step runs, nothing touches the network."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from lambda_ml_layers.build import layer_steps
from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
from lambda_ml_layers.build.layer_steps import step_warnings
from lambda_ml_layers.build.locking import check_locks
from lambda_ml_layers.build.scheduler import INTERRUPTED
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.core.errors import (
    BuildInterrupted,
    ConfigError,
    InstallError,
    InterpreterMissing,
    SizeGateError,
    VerifyError,
)
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.layer_tree import StepResult
from lambda_ml_layers.core.runtimes import LAMBDA_UNZIPPED_LIMIT, RUNTIMES
from lambda_ml_layers.core.toolchains import find_toolchain
from lambda_ml_layers.size_report.command import SizeReportRequest, size_report
from tests.project_factory import (
    HOST_ARCH,
    HOST_MACHINE,
    OTHER_ARCH,
    UNVERIFIABLE,
    TinyProject,
    make_wheel,
    resolution_text,
    tiny_project,
    write_layer,
)


def build(project: TinyProject, **options: object) -> dict:
    return build_layers(BuildRequest(root=project.root, find_links=project.wheels_dir, **options))  # type: ignore[arg-type]


def test_builds_a_stripped_verified_zip_with_python_at_the_root(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    report = build(project)
    names = zipfile.ZipFile(project.output_zip("tinylayer")).namelist()
    assert "python/tinypkg/core.pyc" in names  # sourceless bytecode by default
    assert "python/tinypkg/core.py" not in names
    assert not any("/tests/" in n or n.endswith(".pyi") for n in names)
    assert "python/tinypkg-1.0.0.dist-info/METADATA" in names
    assert "python/tinypkg-1.0.0.dist-info/LICENSE" in names
    assert "python/tinypkg-1.0.0.dist-info/RECORD" not in names
    [layer] = report["layers"]
    assert layer["verified"] is True
    assert layer["removed_bytes_by_rule"]["tests"] > 0
    saved = json.loads(project.report().read_text())
    assert saved["schema_version"] == 1
    assert saved == report
    assert project.paths.report_md("python3.12", HOST_ARCH).read_text().startswith("# Layer build report")
    # the default target's report is also build/report.json
    assert project.paths.default_report.read_bytes() == project.report().read_bytes()


def test_identical_inputs_give_identical_bytes_and_a_no_op_rebuild(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    first = build(project)["layers"][0]
    again = build(project)["layers"][0]
    assert again["cache_hit"] is True
    forced = build(project, force=True)["layers"][0]
    assert forced["cache_hit"] is False
    assert first["sha256"] == again["sha256"] == forced["sha256"]
    info = zipfile.ZipFile(project.output_zip("tinylayer")).infolist()
    assert {i.date_time for i in info} == {(1980, 1, 1, 0, 0, 0)}
    assert [i.filename for i in info] == sorted(i.filename for i in info)


def test_package_without_a_wheel_for_the_target_names_it(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    wheel = make_wheel(
        project.wheels_dir, "fastthing", "2.0", {"fastthing.py": ""}, tag=f"cp312-cp312-manylinux_2_39_{HOST_MACHINE}"
    )
    write_layer(project.root, "tinylayer", [wheel], "budget_mb = 10\n")
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([wheel]))
    with pytest.raises(InstallError) as error:
        build(project)
    message = str(error.value)
    assert f"No wheel of fastthing==2.0 fits python3.12 on {HOST_ARCH}" in message
    assert "glibc <= 2.34" in message
    assert not project.output_zip("tinylayer").exists()


def test_hash_mismatch_is_refused(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    lock = project.layer_dir("tinylayer") / "requirements.txt"
    digest = lock.read_text().split("sha256:")[1].split()[0]
    lock.write_text(lock.read_text().replace(digest, "0" * 64))
    with pytest.raises(InstallError, match="does not match the hashes"):
        build(project)
    assert not project.output_zip("tinylayer").exists()


def test_oversize_layer_fails_the_gate_and_is_not_written(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml="budget_mb = 0.000001\n")
    with pytest.raises(SizeGateError) as error:
        build(project)
    assert "layer tinylayer:" in str(error.value)
    assert "over its budget of 1" in str(error.value)
    assert "nothing was published" in str(error.value)
    assert not project.output_zip("tinylayer").exists()
    assert not project.report().exists()
    failed = json.loads(project.paths.failed_report("python3.12", HOST_ARCH).read_text())
    assert failed["failures"]


def test_strip_rule_that_breaks_an_import_fails_verification(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    wheel = make_wheel(
        project.wheels_dir,
        "needsdocs",
        "1.0",
        {"needsdocs/__init__.py": "from needsdocs.examples import data\n", "needsdocs/examples/data.py": "X = 1\n"},
    )
    write_layer(project.root, "tinylayer", [wheel], "budget_mb = 10\n")
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([wheel]))
    with pytest.raises(VerifyError) as error:
        build(project)
    assert "import needsdocs: ModuleNotFoundError" in str(error.value)
    assert "keep" in str(error.value)
    assert not project.output_zip("tinylayer").exists()
    assert not project.paths.tmp.exists()


def test_missing_target_interpreter_explains_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tiny_project(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    find_interpreter.cache_clear()
    try:
        with pytest.raises(InterpreterMissing) as error:
            build(project, runtime="python3.13")
    finally:
        find_interpreter.cache_clear()
    assert "needs a python3.13 interpreter on PATH" in str(error.value)
    assert "pyenv install 3.13" in str(error.value)


def test_unknown_runtime_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"python3\.9"):
        build(tiny_project(tmp_path), runtime="python3.9")


def test_a_build_for_an_arch_this_machine_cannot_run_warns_that_verification_was_skipped(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    report = build(project, arch=OTHER_ARCH, accept_unverified=True)
    [layer] = report["layers"]
    assert layer["verified"] is False
    skipped = f"not verified: {UNVERIFIABLE}"
    warnings = [n for n in report["notices"] if n["kind"] == "warning"]
    assert [n["layer"] for n in warnings if n["message"].startswith(skipped)] == ["tinylayer"]
    assert project.output_zip("tinylayer", arch=OTHER_ARCH).exists()
    again = build(project, arch=OTHER_ARCH, accept_unverified=True)  # from the cache: the warning comes with it
    assert again["layers"][0]["cache_hit"] is True
    assert again["notices"] == report["notices"]
    assert build(project)["layers"][0]["verified"] is True  # this machine's arch is verified


def base_and_top(tmp_path: Path) -> TinyProject:
    """Layer `top` on base layer `base`, nothing else."""
    project = tiny_project(tmp_path)
    base = make_wheel(project.wheels_dir, "basepkg", "1.0", {"basepkg/__init__.py": "V = 1\n"})
    top = make_wheel(project.wheels_dir, "toppkg", "1.0", {"toppkg/__init__.py": "import basepkg\n"})
    write_layer(project.root, "base", [base], "budget_mb = 1\n")
    write_layer(project.root, "top", [base, top], 'budget_mb = 1\nbase_layers = ["base"]\n', direct={"toppkg"})
    shutil.rmtree(project.root / "layers" / "tinylayer")  # a folder without layer.toml would be an error
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([base, top]))
    return project


def test_base_layer_packages_are_not_repeated_and_base_layers_are_extracted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = base_and_top(tmp_path)
    extracted: list[tuple[str, str]] = []
    real_extract = layer_steps.extract

    def counted(path: Path, destination: Path) -> None:
        extracted.append((str(path), str(destination)))
        real_extract(path, destination)

    monkeypatch.setattr(layer_steps, "extract", counted)
    report = build(project)
    top_layer = next(layer for layer in report["layers"] if layer["name"] == "top")
    assert top_layer["provided_by_base"] == {"basepkg": "base"}
    names = zipfile.ZipFile(project.output_zip("top")).namelist()
    assert not any(n.startswith("python/basepkg") for n in names)
    assert os.path.exists(project.output_zip("base"))
    # The module walk ran on the base layer, then the verify: each layer's own zip into its /opt,
    # and base's zip into top's, each once.
    assert all(layer["verified"] for layer in report["layers"])
    assert any(note.startswith("module walk:") for note in top_layer["steps"][-1]["notes"])
    assert len(extracted) == len(set(extracted)) == 3, extracted
    assert all(Path(destination).name == "opt" for _, destination in extracted)


def test_an_interrupt_in_the_verify_leaves_no_extracted_base_layers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = base_and_top(tmp_path)

    def ctrl_c(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(layer_steps, "check_layer", ctrl_c)
    with pytest.raises(BuildInterrupted):
        build(project)
    assert not project.paths.tmp.exists()


def test_a_second_build_in_the_same_folder_is_refused_while_one_runs(tmp_path: Path) -> None:
    import fcntl

    from lambda_ml_layers.core.errors import BuildInProgress

    project = tiny_project(tmp_path)
    lock_path = project.paths.lock_file
    lock_path.parent.mkdir(parents=True)
    with lock_path.open("w") as held:
        held.write("4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(BuildInProgress, match="pid 4242"):
            build(project)
    assert build(project)["layers"][0]["verified"] is True


TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  TinyLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: {content_uri}
      CompatibleRuntimes: [python3.12]
      CompatibleArchitectures: [{arch}]
  TinyFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ../services/tiny/
      Handler: tiny.handler.main
      Runtime: python3.12
      Architectures: [{arch}]
      Layers: [!Ref TinyLayer]
"""


def content_uri(project: TinyProject, runtime: str = "python3.12") -> str:
    """The template's path to a built zip, as infra/template.yaml spells it (relative to infra/)."""
    return os.path.relpath(project.output_zip("tinylayer", runtime), project.root / "infra")


def with_function(project: TinyProject, requirements: str) -> None:
    (project.root / "infra").mkdir()
    template = TEMPLATE.format(content_uri=content_uri(project), arch=project.arch)
    (project.root / "infra" / "template.yaml").write_text(template)
    code = project.root / "services" / "tiny" / "tiny"
    code.mkdir(parents=True)
    (code / "handler.py").write_text("def main(event, context):\n    return {}\n")
    (code.parent / "requirements.in").write_text(requirements)


def test_function_totals_are_reported_against_lambdas_limit(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    with_function(project, "# everything comes from the layer\n")
    report = build(project)
    [function] = report["functions"]
    assert function["name"] == "TinyFunction"
    assert function["code_bytes"] == len("def main(event, context):\n    return {}\n")
    assert function["layer_bytes"] == report["layers"][0]["unzipped_bytes"]
    assert function["room_for_code_bytes"] == 262_144_000 - function["layer_bytes"]


def test_function_redeclaring_a_layer_package_is_refused_before_building(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    with_function(project, "tinypkg\n")
    with pytest.raises(ConfigError, match="re-declares 'tinypkg', which layer tinylayer provides"):
        build(project)
    assert not project.output_zip("tinylayer").parent.exists()


def test_layers_for_a_target_the_template_does_not_deploy_skip_the_function_gates(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    with_function(project, "# nothing\n")
    report = build(project, runtime="python3.13")
    assert report["functions"] == []
    assert report["failures"] == []
    expected = f"No stage deploys on python3.13/{HOST_ARCH} (the stages deploy on python3.12/{HOST_ARCH})"
    assert any(expected in note for note in report["notes"])


def a_good_build_then_new_inputs(project: TinyProject) -> dict[str, str]:
    """Publish a good build, then change the layer so the next build makes a different zip."""
    build(project)
    before = project.published_files()
    assert any(name.endswith("tinylayer.zip") for name in before)
    assert f"reports/python3.12-{HOST_ARCH}/report.json" in before
    (project.layer_dir("tinylayer") / "layer.toml").write_text('budget_mb = 10\n[build]\nbytecode = "pyc"\n')
    return before


def test_a_build_that_fails_a_function_gate_leaves_the_published_build_byte_identical(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    with_function(project, "# nothing\n")
    before = a_good_build_then_new_inputs(project)
    with pytest.raises(SizeGateError) as error:
        build(project, headroom_bytes=LAMBDA_UNZIPPED_LIMIT)  # no room left: the function is over
    assert "function TinyFunction:" in str(error.value)
    assert "nothing was published" in str(error.value)
    assert project.published_files() == before
    failed = project.paths.failed_report("python3.12", HOST_ARCH)
    [layer] = json.loads(failed.read_text())["layers"]
    assert layer["cache_hit"] is False  # the new zip was built, gated and refused
    report = build(project)  # the next good build publishes it and drops the failed build's report
    assert hashlib.sha256(project.output_zip("tinylayer").read_bytes()).hexdigest() == layer["sha256"]
    assert report["layers"][0]["sha256"] == layer["sha256"]
    assert not failed.exists()


def test_a_layer_that_grows_over_budget_leaves_the_last_good_build_published(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    before = a_good_build_then_new_inputs(project)
    (project.layer_dir("tinylayer") / "layer.toml").write_text("budget_mb = 0.000001\n")
    with pytest.raises(SizeGateError, match="layer tinylayer:"):
        build(project)
    assert project.published_files() == before


def test_an_interrupted_build_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tiny_project(tmp_path)
    before = a_good_build_then_new_inputs(project)

    def ctrl_c(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(layer_steps, "write_zip", ctrl_c)
    with pytest.raises(BuildInterrupted) as error:
        build(project)
    assert str(error.value) == INTERRUPTED
    assert project.published_files() == before
    assert not project.paths.tmp.exists()


def test_each_target_keeps_its_own_report(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    build(project)
    default = project.published_files()
    build(project, arch=OTHER_ARCH, accept_unverified=True)
    after = project.published_files()
    assert {name: after[name] for name in default} == default  # the default target's files untouched
    other = json.loads(project.report(arch=OTHER_ARCH).read_text())
    assert (other["runtime"], other["arch"]) == ("python3.12", OTHER_ARCH)
    assert json.loads(project.paths.default_report.read_text())["arch"] == HOST_ARCH


def test_a_template_layer_pointing_at_another_targets_zip_is_refused(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    with_function(project, "# nothing\n")
    template = project.root / "infra" / "template.yaml"
    template.write_text(template.read_text().replace(content_uri(project), content_uri(project, "python3.11")))
    with pytest.raises(SizeGateError) as error:
        build(project)
    assert f"TinyLayer ContentUri '{content_uri(project, 'python3.11')}' is not the zip" in str(error.value)
    assert f"Fix: ContentUri: {content_uri(project)}" in str(error.value)


def test_two_failing_layers_are_each_reported_with_their_own_error_and_code(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    no_wheel = make_wheel(
        project.wheels_dir, "fastthing", "2.0", {"fastthing.py": ""}, tag=f"cp312-cp312-manylinux_2_39_{HOST_MACHINE}"
    )
    breaks = make_wheel(
        project.wheels_dir,
        "needsdocs",
        "1.0",
        {"needsdocs/__init__.py": "from needsdocs.examples import data\n", "needsdocs/examples/data.py": "X = 1\n"},
    )
    write_layer(project.root, "tinylayer", [no_wheel], "budget_mb = 10\n")
    write_layer(project.root, "otherlayer", [breaks], "budget_mb = 10\n")
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([no_wheel, breaks]))
    with pytest.raises(VerifyError) as error:  # otherlayer comes first in build order
        build(project)
    message = str(error.value)
    assert message.startswith("2 layers failed: otherlayer, tinylayer.")
    assert "the exit code is otherlayer's (6)" in message
    verify_part, install_part = message.split("Layer tinylayer failed (InstallError, exit code 4):")
    assert "Layer otherlayer failed (VerifyError, exit code 6):" in verify_part
    assert "import needsdocs: ModuleNotFoundError" in verify_part
    assert f"No wheel of fastthing==2.0 fits python3.12 on {HOST_ARCH}" in install_part
    assert not project.paths.published.exists()


def test_step_warnings_are_a_field_of_the_step_not_read_from_its_notes(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    report = build(project, arch=OTHER_ARCH, accept_unverified=True)
    steps = {step["step"]: step for step in report["layers"][0]["steps"]}
    toolchain = find_toolchain(RUNTIMES["python3.12"], OTHER_ARCH)
    # With bootstrap's arm64 tools, the sysroot's dynamic loader load-checks what is stripped: no warning.
    if toolchain.strip and toolchain.loader:
        assert steps["shared-objects"]["warnings"] == []
        assert steps["shared-objects"]["notes"][0] == "0 stripped"
    else:
        assert steps["shared-objects"]["warnings"] == [f"not stripped: {why}" for why in toolchain.missing]
        assert steps["shared-objects"]["notes"] == []
    assert steps["verify"]["warnings"] == [f"not verified: {UNVERIFIABLE}"]
    assert steps["strip"]["warnings"] == []
    warnings = [n["message"] for n in report["notices"] if n["kind"] == "warning" and n["layer"] == "tinylayer"]
    assert warnings == steps["shared-objects"]["warnings"] + steps["verify"]["warnings"]


def test_a_note_that_merely_reads_like_a_warning_stays_a_note() -> None:
    steps = [
        StepResult("shared-objects", notes=("restored nothing: all 3 stripped libraries load",)),
        StepResult("verify", warnings=("not verified: arm64 binaries cannot run here",)),
    ]
    assert [n.message for n in step_warnings("core", steps)] == ["not verified: arm64 binaries cannot run here"]


def test_a_cuda_only_wheel_in_a_lock_is_a_warning_at_lock_check_and_in_the_build_report(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    tiny = make_wheel(project.wheels_dir, "tinypkg", "1.0.0", {"tinypkg/__init__.py": "ANSWER = 42\n"})
    cuda = make_wheel(project.wheels_dir, "nvidia-tiny-cu12", "1.0", {"nvidia/tiny/__init__.py": ""})
    write_layer(project.root, "tinylayer", [tiny, cuda], "budget_mb = 10\n", direct={"tinypkg"})
    lock = project.layer_dir("tinylayer") / "requirements.txt"
    # pip-compile's note of what required it, as it writes one for a transitive dependency
    via = "#   -c ../resolution.txt\n"
    lock.write_text(lock.read_text().replace(via, via + "    #   tinypkg\n", 1))  # the first block: nvidia-tiny-cu12
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([tiny, cuda]))
    [checked, warning] = check_locks(load_project(project.root))
    assert checked.endswith("2 packages, hashed, current")
    assert warning.startswith("warning: layers/tinylayer/requirements.txt: CUDA-only wheels nvidia-tiny-cu12==1.0")
    assert "(pulled in by tinypkg)" in warning
    report = build(project)
    [notice] = [n for n in report["notices"] if n["kind"] == "warning"]
    assert notice["layer"] == "tinylayer"
    assert notice["message"] == warning.split(": ", 2)[2]
    assert any("nvidia-tiny-cu12" in line for line in report["notes"])


def test_each_good_build_keeps_the_report_it_replaces_for_size_report(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    previous = project.paths.previous_report("python3.12", project.arch)
    build(project)
    first = project.report().read_text()
    assert not previous.exists()  # the first build replaced nothing
    (project.layer_dir("tinylayer") / "layer.toml").write_text('budget_mb = 10\n[build]\nbytecode = "pyc"\n')
    build(project)
    assert previous.read_text() == first
    assert project.report().read_text() != first
    assert str(previous.relative_to(project.paths.build)) in project.published_files()  # all or nothing
    build(project)
    kept = previous.read_text()
    build(project)  # its report identical to the published one: the pair stays as it was
    assert previous.read_text() == kept != project.report().read_text()
    text = size_report(SizeReportRequest(root=project.root)).text
    assert "this build against the previous build (build/reports/" in text


def test_a_layer_that_with_its_base_passes_lambdas_limit_can_never_fit_whatever_its_budget(tmp_path: Path) -> None:
    # Real bytes (zeros: wheels and zips of a few hundred KB, about 5 s): each layer fits its own
    # budget, but no function can carry the top one without its base, and the two pass Lambda's limit.
    project = tiny_project(tmp_path)
    mb = 1_000_000
    base = make_wheel(
        project.wheels_dir, "basepkg", "1.0", {"basepkg/__init__.py": "", "basepkg/b.bin": "\0" * 150 * mb}
    )
    top = make_wheel(
        project.wheels_dir, "toppkg", "1.0", {"toppkg/__init__.py": "import basepkg\n", "toppkg/t.bin": "\0" * 120 * mb}
    )
    write_layer(project.root, "base", [base], "budget_mb = 200\n")
    write_layer(project.root, "top", [base, top], 'budget_mb = 200\nbase_layers = ["base"]\n', direct={"toppkg"})
    shutil.rmtree(project.root / "layers" / "tinylayer")
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([base, top]))
    with pytest.raises(SizeGateError) as error:
        build(project)
    [offender] = [line for line in str(error.value).splitlines() if line.startswith("  - ")]
    assert offender.startswith("  - layer top: 120,000,")
    assert "+ base layer base 150,000," in offender
    assert f"over Lambda's limit of {LAMBDA_UNZIPPED_LIMIT:,} bytes" in offender
    assert "can never fit, whatever its budget (largest: toppkg 120.0 MB)" in offender
    assert "budget_mb" not in offender
    assert not project.output_zip("top").exists()
