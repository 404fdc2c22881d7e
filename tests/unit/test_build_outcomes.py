"""What a build leaves and says: no stale zips of removed layers, and progress lines that agree
with the report on whether each layer was verified."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
from lambda_ml_layers.core.errors import NotVerified, SizeGateError
from tests.project_factory import (
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


def two_layer_project(tmp_path: Path) -> TinyProject:
    project = tiny_project(tmp_path)
    old = make_wheel(project.wheels_dir, "oldpkg", "1.0", {"oldpkg/__init__.py": "V = 1\n"})
    write_layer(project.root, "oldlayer", [old], "budget_mb = 1\n")
    lines = resolution_text([old]) + (project.root / "layers" / "resolution.txt").read_text()
    (project.root / "layers" / "resolution.txt").write_text(lines)
    return project


def drop_layer(project: TinyProject, name: str) -> None:
    shutil.rmtree(project.layer_dir(name))


def test_zips_of_removed_layers_are_removed_on_publishing_and_the_report_says_so(tmp_path: Path) -> None:
    project = two_layer_project(tmp_path)
    build(project)
    old_zip = project.output_zip("oldlayer")
    assert old_zip.exists()
    drop_layer(project, "oldlayer")
    report = build(project)
    assert not old_zip.exists()
    assert not old_zip.with_suffix(".json").exists()
    assert project.output_zip("tinylayer").exists()
    notes = " ".join(report["notes"])
    assert f"removed {old_zip.relative_to(project.root)}: no layer 'oldlayer' in layers/ any more" in notes
    assert f"removed {old_zip.with_suffix('.json').relative_to(project.root)}" in notes


def test_layers_left_out_of_a_build_are_not_stale(tmp_path: Path) -> None:
    project = two_layer_project(tmp_path)
    build(project)
    build(project, layers=["tinylayer"])
    assert project.output_zip("oldlayer").exists()


def test_a_build_that_fails_a_gate_removes_no_stale_zip(tmp_path: Path) -> None:
    project = two_layer_project(tmp_path)
    build(project)
    drop_layer(project, "oldlayer")
    (project.layer_dir("tinylayer") / "layer.toml").write_text("budget_mb = 0.000001\n")
    before = project.published_files()
    with pytest.raises(SizeGateError):
        build(project)
    assert project.published_files() == before
    assert project.output_zip("oldlayer").exists()


def progress_lines(err: str) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(err.split())


def test_progress_and_report_agree_on_a_layer_that_could_not_be_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tiny_project(tmp_path)
    report = build(project, arch=OTHER_ARCH, accept_unverified=True)
    progress = progress_lines(capsys.readouterr().err)
    [layer] = report["layers"]
    assert layer["verified"] is False
    assert layer["verification"] == f"not verified: {UNVERIFIABLE}"
    assert not re.search(r"\[tinylayer\] verified", progress)
    assert f"[tinylayer] not verified ({UNVERIFIABLE[:40]}" in progress
    assert f"[tinylayer] built (0.0 MB unzipped; {layer['verification']})" in progress
    saved = json.loads(project.report(arch=OTHER_ARCH).read_text())
    assert saved["layers"][0]["verification"] == layer["verification"]
    build(project, arch=OTHER_ARCH, accept_unverified=True)  # from the cache: the same words
    assert f"[tinylayer] cached (unchanged inputs; {layer['verification']})" in progress_lines(capsys.readouterr().err)


def test_progress_and_report_agree_on_a_verified_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tiny_project(tmp_path)
    [layer] = build(project)["layers"]
    progress = progress_lines(capsys.readouterr().err)
    assert layer["verified"] is True
    assert layer["verification"] == "verified"
    assert "[tinylayer] verified" in progress
    assert "[tinylayer] built (0.0 MB unzipped; verified)" in progress


def test_a_build_that_could_not_be_verified_publishes_nothing_and_exits_not_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """python3.12 for the other arch: no interpreter of it exists here, even under qemu (arm64 has
    none for 3.12). It used to publish `verified: false` and exit 0."""
    project = tiny_project(tmp_path)
    build(project)
    before = project.published_files()
    with pytest.raises(NotVerified) as error:
        build(project, arch=OTHER_ARCH)
    assert error.value.exit_code == 31
    message = str(error.value)
    assert f"tinylayer: not verified: {UNVERIFIABLE}" in message
    assert "--accept-unverified" in message
    assert project.published_files() == before
    assert not project.output_zip("tinylayer", arch=OTHER_ARCH).exists()
    failed = json.loads(project.paths.failed_report("python3.12", OTHER_ARCH).read_text())
    assert failed["layers"][0]["verified"] is False
    assert f"[tinylayer] not verified ({UNVERIFIABLE[:40]}" in progress_lines(capsys.readouterr().err)
    build(project, arch=OTHER_ARCH, accept_unverified=True)  # accepted: published, and the report says so
    assert json.loads(project.report(arch=OTHER_ARCH).read_text())["layers"][0]["verified"] is False


def test_an_unverifiable_build_over_its_budget_exits_not_verified(tmp_path: Path) -> None:
    """`inv build-layers --runtime python3.12 --arch arm64` here: nothing can load-check the shared
    objects, so none is stripped, ml-libraries went over its budget, and the build exited 7 (size
    gates) instead of naming the cause. Not verifiable comes first; the gates are listed with it."""
    project = tiny_project(tmp_path, "budget_mb = 0.000001\n")
    with pytest.raises(NotVerified) as error:
        build(project, arch=OTHER_ARCH)
    assert error.value.exit_code == 31
    message = str(error.value)
    assert f"tinylayer: not verified: {UNVERIFIABLE}" in message and "--accept-unverified" in message
    assert "layer tinylayer" in message.split("The size gates failed as well")[1]
    with pytest.raises(SizeGateError):  # accepting unverified layers does not lift the budget
        build(project, arch=OTHER_ARCH, accept_unverified=True)
