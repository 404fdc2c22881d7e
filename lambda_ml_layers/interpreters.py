"""Find the interpreter of the target runtime on PATH, or explain how to get one."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from .errors import InterpreterMissing
from .runtimes import Runtime

# bootstrap makes pyenv's interpreters visible with `pyenv local` in this repository. pyenv's
# shims look for that .python-version from the working directory, so a command run from any
# other folder would miss them; PYENV_DIR makes them look here whatever the working directory.
ENGINE_REPO = Path(__file__).resolve().parents[1]


def _lookup_environment() -> dict[str, str]:
    return {"PYENV_DIR": str(ENGINE_REPO), **os.environ}


@cache
def find_interpreter(runtime: Runtime) -> str:
    """Absolute path of a working `pythonX.Y` for the runtime (resolved once, so cwd cannot change it)."""
    command = f"python{runtime.version}"
    found = shutil.which(command)
    if found:
        result = subprocess.run(
            [found, "-c", "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            env=_lookup_environment(),
        )
        lines = result.stdout.split()
        if result.returncode == 0 and len(lines) == 2 and lines[1] == runtime.version:
            return lines[0]
    raise InterpreterMissing(
        f"The {runtime.name} runtime needs a {command} interpreter on PATH: the layers' bytecode, their "
        f"import checks and model training run in it. None works here.\n"
        f"  Fix: install Python {runtime.version} (e.g. `pyenv install {runtime.version}`, then run "
        f"`python3 scripts/bootstrap.py`, which makes pyenv's interpreters visible in this repo), "
        f"or build for a runtime you have with --runtime."
    )
