"""A full disk while pip installs: a real pip into a real small tmpfs (needs root and mount).

The message must say "No space left on device" and where, not pip's traceback; a build that
fails so must leave the last good layers exactly as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
from lambda_ml_layers.build.bytecode import compile_bytecode
from lambda_ml_layers.build.pip_runner import install_for_target
from lambda_ml_layers.config.locks import LockedPackage
from lambda_ml_layers.core.errors import InstallError
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.runtimes import RUNTIMES
from tests.integration.fault_mounts import fill, small_disk, why_no_mounts
from tests.project_factory import HOST_ARCH, make_wheel, resolution_text, tiny_project, write_layer

BIG_FILE_BYTES = 12 * 1024 * 1024  # unpacked; deflate makes the wheel itself a few KB


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs, unmounted afterwards."""
    reason = why_no_mounts()
    if reason:
        pytest.skip(reason)
    folder = tmp_path / "small-disk"
    with small_disk(folder, "8m"):
        yield folder


def big_package(folder: Path) -> LockedPackage:
    wheel = make_wheel(folder, "bigpkg", "1.0", {"bigpkg/__init__.py": "", "bigpkg/data.txt": "x" * BIG_FILE_BYTES})
    return LockedPackage("bigpkg", "1.0", (f"sha256:{wheel.sha256}",), ())


def test_pip_filling_the_target_disk_says_so_and_where(disk: Path, tmp_path: Path) -> None:
    package = big_package(tmp_path / "wheels")
    target = disk / "site"
    with pytest.raises(InstallError) as caught:
        install_for_target(
            [package], target, RUNTIMES["python3.12"], HOST_ARCH, tmp_path / "cache", tmp_path / "wheels"
        )
    text = str(caught.value)
    assert text.startswith(f"No space left on device while pip installed bigpkg==1.0 into {target}")
    assert f"(writing {target}/bigpkg/data.txt)" in text
    assert f"df -h {disk} " in text  # the disk's mount point: it outlives the staging folders
    assert "Traceback" not in text and len(text) < 1500
    assert caught.value.exit_code == 4


def test_our_own_write_before_pip_on_a_full_disk_is_the_same_message(disk: Path, tmp_path: Path) -> None:
    fill(disk)
    package = big_package(tmp_path / "wheels")
    target = disk / "site"
    with pytest.raises(InstallError) as caught:
        install_for_target(
            [package], target, RUNTIMES["python3.12"], HOST_ARCH, tmp_path / "cache", tmp_path / "wheels"
        )
    text = str(caught.value)
    assert text.startswith(f"No space left on device while pip installed bigpkg==1.0 into {target}")
    assert f"(writing {disk}/site.requirements.txt)" in text


def test_compiling_bytecode_on_a_full_disk_is_an_install_error_not_a_half_compiled_layer(
    disk: Path,
) -> None:
    site = disk / "site"
    (site / "pkg").mkdir(parents=True)
    for index in range(20):
        (site / "pkg" / f"m{index}.py").write_text(f"VALUE = {index}\n" * 200)
    fill(disk)
    python = find_interpreter(RUNTIMES["python3.12"])
    with pytest.raises(InstallError) as caught:
        compile_bytecode(site, python, "sourceless", "/opt/python")
    text = str(caught.value)
    assert text.startswith(f"Compiling bytecode in {site} failed (exit 1)")
    assert "No space left on device" in text
    assert len(list((site / "pkg").glob("*.py"))) == 20  # no source removed


def test_a_build_that_fills_the_disk_leaves_the_last_good_layer(tmp_path: Path) -> None:
    reason = why_no_mounts()
    if reason:
        pytest.skip(reason)
    project = tiny_project(tmp_path / "project")
    with small_disk(project.root / "build", "8m"):
        request = BuildRequest(root=project.root, find_links=project.wheels_dir)
        build_layers(request)
        good = project.output_zip("tinylayer").read_bytes()
        wheel = make_wheel(
            project.wheels_dir, "bigpkg", "1.0", {"bigpkg/__init__.py": "", "bigpkg/data.txt": "x" * BIG_FILE_BYTES}
        )
        write_layer(project.root, "tinylayer", [wheel], "budget_mb = 10\n")
        (project.root / "layers" / "resolution.txt").write_text(resolution_text([wheel]))
        with pytest.raises(InstallError, match=r"No space left on device while pip installed bigpkg==1\.0"):
            build_layers(request)
        assert project.output_zip("tinylayer").read_bytes() == good
