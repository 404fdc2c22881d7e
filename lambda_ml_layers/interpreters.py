"""Find the interpreter of the target runtime on PATH, or explain how to get one."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache

from .errors import InterpreterMissing
from .runtimes import Runtime


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
