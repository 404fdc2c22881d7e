"""A full disk while pip installs: a real pip into a real small tmpfs (needs root and mount).

The message must say "No space left on device" and where, not pip's traceback; a build that
fails so must leave the last good layers exactly as they were.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambda_ml_layers.build import BuildRequest, build_layers
from lambda_ml_layers.bytecode import compile_bytecode
from lambda_ml_layers.errors import InstallError
from lambda_ml_layers.interpreters import find_interpreter
from lambda_ml_layers.locks import LockedPackage
from lambda_ml_layers.pip_runner import install_for_target
from lambda_ml_layers.runtimes import RUNTIMES
from tests.project_factory import HOST_ARCH, make_wheel, resolution_text, tiny_project, write_layer

BIG_FILE_BYTES = 12 * 1024 * 1024  # unpacked; deflate makes the wheel itself a few KB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs, unmounted afterwards."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def big_package(folder: Path) -> LockedPackage:
    wheel = make_wheel(folder, "bigpkg", "1.0", {"bigpkg/__init__.py": "", "bigpkg/data.txt": "x" * BIG_FILE_BYTES})
    return LockedPackage("bigpkg", "1.0", (f"sha256:{wheel.sha256}",), ())


def test_pip_filling_the_target_disk_says_so_and_where(small_disk: Path, tmp_path: Path) -> None:
    package = big_package(tmp_path / "wheels")
    target = small_disk / "site"
    with pytest.raises(InstallError) as caught:
        install_for_target(
            [package], target, RUNTIMES["python3.12"], HOST_ARCH, tmp_path / "cache", tmp_path / "wheels"
        )
    text = str(caught.value)
    assert text.startswith(f"No space left on device while pip installed bigpkg==1.0 into {target}")
    assert f"(writing {target}/bigpkg/data.txt)" in text
    assert f"df -h {small_disk} " in text  # the disk's mount point: it outlives the staging folders
    assert "Traceback" not in text and len(text) < 1500
    assert caught.value.exit_code == 4


def test_our_own_write_before_pip_on_a_full_disk_is_the_same_message(small_disk: Path, tmp_path: Path) -> None:
    fill(small_disk)
    package = big_package(tmp_path / "wheels")
    target = small_disk / "site"
    with pytest.raises(InstallError) as caught:
        install_for_target(
            [package], target, RUNTIMES["python3.12"], HOST_ARCH, tmp_path / "cache", tmp_path / "wheels"
        )
    text = str(caught.value)
    assert text.startswith(f"No space left on device while pip installed bigpkg==1.0 into {target}")
    assert f"(writing {small_disk}/site.requirements.txt)" in text


def fill(disk: Path) -> None:
    with (disk / "filler").open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError as full:
            assert full.errno == errno.ENOSPC


def test_compiling_bytecode_on_a_full_disk_is_an_install_error_not_a_half_compiled_layer(small_disk: Path) -> None:
    site = small_disk / "site"
    (site / "pkg").mkdir(parents=True)
    for index in range(20):
        (site / "pkg" / f"m{index}.py").write_text(f"VALUE = {index}\n" * 200)
    fill(small_disk)
    python = find_interpreter(RUNTIMES["python3.12"])
    with pytest.raises(InstallError) as caught:
        compile_bytecode(site, python, "sourceless", "/opt/python")
    text = str(caught.value)
    assert text.startswith(f"Compiling bytecode in {site} failed (exit 1)")
    assert "No space left on device" in text
    assert len(list((site / "pkg").glob("*.py"))) == 20  # no source removed


def test_a_build_that_fills_the_disk_leaves_the_last_good_layer(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project")
    build = project.root / "build"
    build.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(build)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {mounted.stderr.decode().strip()}")
    try:
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
    finally:
        subprocess.run(["umount", "-l", str(build)], check=False)
