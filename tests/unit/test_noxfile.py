"""`nox` as a user runs it: a session that fails in the engine exits with the engine's code
(docs/troubleshooting.md), not nox's generic 1, and shows no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from lambda_ml_layers.core.errors import LayerTestFailed, LockError
from tests.project_factory import REPO, tiny_project

NOX = [sys.executable, "-m", "nox"]


def run_nox(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The repository's noxfile, run from a copy in `root`, so ROOT (its folder) is the tiny project."""
    shutil.copy(REPO / "noxfile.py", root / "noxfile.py")
    shutil.copy(REPO / ".python-version", root / ".python-version")  # pyenv's shims find 3.11-3.13 by it
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    environment.update({"PYTHONPATH": str(REPO), **env})
    return subprocess.run(
        [*NOX, "--noxfile", str(root / "noxfile.py"), "--envdir", str(root / ".nox"), *args],
        capture_output=True,
        text=True,
        cwd=root,
        env=environment,
        timeout=600,
    )


def test_a_stale_lock_in_lock_check_exits_with_the_lock_error_code(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    (project.layer_dir("tinylayer") / "requirements.in").write_text("tinypkg\nanotherpkg\n")
    result = run_nox(project.root, "-s", "lock_check")
    output = result.stdout + result.stderr
    assert result.returncode == LockError.exit_code == 3, output
    assert "anotherpkg is in requirements.in but not locked" in output
    assert "Traceback" not in output


def test_layer_tests_with_a_deployed_layer_unbuilt_exits_22_naming_it(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    (project.root / "infra").mkdir()
    (project.root / "infra" / "template.yaml").write_text(
        "Resources:\n  TinyLayer:\n    Type: AWS::Serverless::LayerVersion\n    Properties:\n"
        f"      ContentUri: {os.path.relpath(project.output_zip('tinylayer'), project.root / 'infra')}\n"
        f"      CompatibleRuntimes: [python3.12]\n      CompatibleArchitectures: [{project.arch}]\n"
    )
    result = run_nox(project.root, "-s", "layer_tests-3.12")
    output = result.stdout + result.stderr
    assert result.returncode == LayerTestFailed.exit_code == 22, output
    assert f"tinylayer: infra/template.yaml deploys it on python3.12/{project.arch}" in output
    assert "Traceback" not in output
