"""A missing runtime interpreter: `nox -s layer_tests` skips with the reason locally and fails on CI."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.project_factory import REPO


def nox_layer_tests_without_pythons(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYENV_VERSION")}
    env["PATH"] = "/usr/bin:/bin"  # no pyenv shims: python3.13 cannot be found
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "nox", "-s", "layer_tests-3.13"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_skipped_with_the_reason_locally() -> None:
    result = nox_layer_tests_without_pythons(ci=False)
    assert result.returncode == 0
    assert "skipped: Python interpreter 3.13 not found" in result.stderr


def test_failed_on_ci() -> None:
    result = nox_layer_tests_without_pythons(ci=True)
    assert result.returncode != 0
    assert "failed: Python interpreter 3.13 not found" in result.stderr
