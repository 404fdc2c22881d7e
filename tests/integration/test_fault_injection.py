"""Faults that need a real file system: read-only build folders and a full disk under the build's
own writes (zip, cache, publish). Each ends in one clear error naming the path, or, where
nothing had to change, in a good build; the last good build is left exactly as it was.

Root ignores file modes, so read-only means a read-only bind mount, and a full disk a small
tmpfs. Where this machine cannot mount (not root, no CAP_SYS_ADMIN), the tests skip saying so.
Tiny offline layers keep every test to a second or two."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
from lambda_ml_layers.core.errors import BuildWriteError
from tests.integration.fault_mounts import fill, read_only, small_disk, why_no_mounts
from tests.project_factory import REPO, TinyProject, make_wheel, resolution_text, tiny_project, write_layer


@pytest.fixture(autouse=True)
def _needs_mounts() -> None:
    reason = why_no_mounts()
    if reason:
        pytest.skip(reason)


def build(project: TinyProject, **options: object) -> dict:
    return build_layers(BuildRequest(root=project.root, find_links=project.wheels_dir, **options))  # type: ignore[arg-type]


def change_the_layer(project: TinyProject, payload: str = "") -> None:
    """New package contents, so the layer must be built and published again."""
    wheel = make_wheel(
        project.wheels_dir,
        "tinypkg",
        "1.0.1",
        {"tinypkg/__init__.py": "ANSWER = 43\n", **({"tinypkg/payload.txt": payload} if payload else {})},
    )
    write_layer(project.root, "tinylayer", [wheel], "budget_mb = 10\n")
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([wheel]))


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


# --- read-only trees ---------------------------------------------------------------------


def test_an_unchanged_build_on_a_read_only_build_layers_succeeds_and_rewrites_nothing(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    build(project)
    before = mtimes(project.paths.published)
    with read_only(project.paths.published):
        report = build(project)
    assert report["layers"][0]["cache_hit"] is True
    assert mtimes(project.paths.published) == before


def test_an_unchanged_build_on_a_read_only_build_folder_succeeds(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    build(project)
    build(project)  # a second, all-cached build: its report is the one a third would write
    before = project.published_files()
    with read_only(project.paths.build):
        report = build(project)
    assert report["layers"][0]["cache_hit"] is True
    assert project.published_files() == before


def test_a_read_only_build_folder_that_must_be_written_is_a_clear_error(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    build(project)
    before = project.published_files()
    change_the_layer(project)
    with read_only(project.paths.build), pytest.raises(BuildWriteError) as error:
        build(project)
    message = str(error.value)
    assert "Read-only file system writing" in message
    assert str(project.paths.tmp) in message  # the first place this build had to write
    assert "make it writable" in message
    assert project.published_files() == before


def test_a_read_only_build_layers_that_must_change_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    build(project)
    before = project.published_files()
    change_the_layer(project)
    with read_only(project.paths.published), pytest.raises(BuildWriteError) as error:
        build(project)
    output = project.paths.output_dir("python3.12", project.arch)
    assert f"Read-only file system writing {output}/tinylayer." in str(error.value)
    assert ".part" not in str(error.value)
    assert project.published_files() == before


def test_the_command_line_exits_20_without_a_traceback_on_a_read_only_tree(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    build(project)
    change_the_layer(project)
    command = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "build-layers", "--root", str(project.root)]
    with read_only(project.paths.build):
        result = subprocess.run(
            [*command, "--find-links", str(project.wheels_dir)], capture_output=True, text=True, cwd=REPO, timeout=300
        )
    assert result.returncode == 20, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Read-only file system writing" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# --- a full disk ---------------------------------------------------------------------------


def assert_no_space_error(error: BuildWriteError, where: Path) -> None:
    message = str(error)
    assert "no space left on device" in message.lower()
    assert f"writing {where}" in message
    assert "Nothing was published" in message


def test_a_full_disk_while_zipping_names_the_zip_and_publishes_nothing(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    build(project)
    before = project.published_files()
    # 800,000 bytes of random text: installed it fits on 1 MiB, but its ~600 kB zip beside it does not.
    change_the_layer(project, payload=secrets.token_urlsafe(600_000)[:800_000])
    with small_disk(project.paths.tmp, "1m"), pytest.raises(BuildWriteError) as error:
        build(project)
    assert_no_space_error(error.value, project.paths.tmp)
    assert "layer.zip" in str(error.value)
    assert project.published_files() == before


def test_a_full_disk_while_caching_names_the_cache_and_publishes_nothing(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    with small_disk(project.paths.cache, "64k"):
        fill(project.paths.cache)
        with pytest.raises(BuildWriteError) as error:
            build(project)
        assert_no_space_error(error.value, project.paths.cache / "tinylayer")
        leftovers = [p for p in project.paths.cache.rglob("*") if p.is_file() and p.name != "filler"]
        assert leftovers == []  # no half-written entry
    assert not project.paths.published.exists()
    assert not project.paths.default_report.exists()


def test_a_full_disk_while_publishing_leaves_the_last_good_build(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    with small_disk(project.paths.published, "1m"):
        build(project)
        fill(project.paths.published)
        before = project.published_files()
        change_the_layer(project, payload="x" * 50_000)
        with pytest.raises(BuildWriteError) as error:
            build(project)
        output = project.paths.output_dir("python3.12", project.arch)
        assert_no_space_error(error.value, output / "tinylayer.zip")
        assert project.published_files() == before
        assert not list(output.glob(".*.part"))
