"""The runtime's interpreter is found the same way from any working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.project_factory import REPO

FIND = (
    "import sys; sys.path.insert(0, sys.argv[1]);"
    "from lambda_ml_layers.core.interpreters import find_interpreter;"
    "from lambda_ml_layers.core.runtimes import RUNTIMES;"
    "print(find_interpreter(RUNTIMES['python3.12']))"
)


def found_from(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYENV_VERSION", "PYENV_DIR")}
    return subprocess.run(
        [sys.executable, "-c", FIND, str(REPO)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_found_from_outside_the_repository_as_from_inside(tmp_path: Path) -> None:
    inside, outside = found_from(REPO), found_from(tmp_path)
    assert inside.returncode == 0, inside.stderr
    assert outside.returncode == 0, outside.stderr[-2000:]
    assert outside.stdout == inside.stdout
