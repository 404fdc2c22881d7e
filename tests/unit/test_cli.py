"""`inv build-layers` as a user runs it: exit codes, no tracebacks, and Ctrl-C mid-build."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from lambda_ml_layers.build.scheduler import INTERRUPTED
from tests.project_factory import REPO, TinyProject, make_wheel, resolution_text, tiny_project, write_layer

INV = [sys.executable, "-m", "invoke", "--search-root", str(REPO)]


def run_build(project: TinyProject, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INV, "build-layers", "--root", str(project.root), "--find-links", str(project.wheels_dir), *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_broken_config_exits_2_with_the_file_and_no_traceback(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml="budget_mb = [\n")
    result = run_build(project)
    assert result.returncode == 2
    assert "layers/tinylayer/layer.toml: not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_stale_lock_exits_3_and_names_the_fix(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    (project.layer_dir("tinylayer") / "requirements.in").write_text("tinypkg\nanotherpkg\n")
    result = run_build(project)
    assert result.returncode == 3
    assert "anotherpkg is in requirements.in but not locked; run `nox -s lock`" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_mid_build_leaves_nothing_half_written(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    assert run_build(project).returncode == 0  # a good build first: Ctrl-C must leave it published
    published = project.published_files()
    # Enough modules that bytecode compilation takes a moment to interrupt.
    files = {f"bulky/m{i}.py": "def f(x):\n    return [x * i for i in range(10)]\n" * 20 for i in range(3000)}
    files["bulky/__init__.py"] = ""
    wheel = make_wheel(project.wheels_dir, "bulky", "1.0", files)
    write_layer(project.root, "tinylayer", [wheel], "budget_mb = 100\n")
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([wheel]))
    process = subprocess.Popen(
        [*INV, "build-layers", "--root", str(project.root), "--find-links", str(project.wheels_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        start_new_session=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "stripping" in line:
            time.sleep(0.3)
            os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches the whole group
            break
    _, rest = process.communicate(timeout=120)
    assert process.returncode == 130, rest
    # One message, the true one: finished layers stay cached (the next build resumes), and
    # nothing was published.
    assert INTERRUPTED in " ".join(rest.split()), rest
    assert "the next build starts clean" not in rest
    assert "Traceback" not in rest
    assert project.published_files() == published
    assert not project.paths.tmp.exists()
    cache = project.paths.cache / "tinylayer"
    for entry in cache.iterdir() if cache.exists() else []:  # only complete entries, never a half one
        manifest = json.loads((entry / "manifest.json").read_text())
        assert hashlib.sha256((entry / "layer.zip").read_bytes()).hexdigest() == manifest["sha256"]

    result = run_build(project)
    assert result.returncode == 0, result.stderr
    assert "python/bulky/m1.pyc" in zipfile.ZipFile(project.output_zip("tinylayer")).namelist()
