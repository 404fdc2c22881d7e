"""Find the interpreter of the target runtime on PATH, or explain how to get one."""

from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path

from ..target_scripts import script
from .command_runner import call
from .errors import InterpreterMissing
from .runtimes import Runtime

# bootstrap makes pyenv's interpreters visible with `pyenv local` in this repository. pyenv's
# shims look for that .python-version from the working directory, so a command run from any
# other folder would miss them; PYENV_DIR makes them look here whatever the working directory.
ENGINE_REPO = Path(__file__).resolve().parents[2]


def _lookup_environment() -> dict[str, str]:
    return {"PYENV_DIR": str(ENGINE_REPO), **os.environ}


def interpreter_info(python: str) -> list[str]:
    """[real path, X.Y, full version] of `python`, as it reports them itself."""
    result = call([python, "-I", script("interpreter_info")], env=_lookup_environment(), error=None)
    lines = result.output.splitlines()
    return lines if result.returncode == 0 and len(lines) == 3 else []


def interpreter_version(python: str) -> str:
    """`python`'s full version (sys.version), e.g. for cache keys; a broken interpreter is refused."""
    info = interpreter_info(python)
    if not info:
        raise InterpreterMissing(
            f"{python} does not run (it could not report its version).\n"
            f"  Fix: reinstall it, or run `python3 scripts/bootstrap.py` to set up the project's interpreters."
        )
    return info[2]


@cache
def find_interpreter(runtime: Runtime) -> str:
    """Absolute path of a working `pythonX.Y` for the runtime (resolved once, so cwd cannot change it)."""
    command = f"python{runtime.version}"
    found = shutil.which(command)
    if found:
        info = interpreter_info(found)
        if info and info[1] == runtime.version:
            return info[0]
    raise InterpreterMissing(
        f"The {runtime.name} runtime needs a {command} interpreter on PATH: the layers' bytecode, their "
        f"import checks and model training run in it. None works here.\n"
        f"  Fix: install Python {runtime.version} (e.g. `pyenv install {runtime.version}`, then run "
        f"`python3 scripts/bootstrap.py`, which makes pyenv's interpreters visible in this repo), "
        f"or build for a runtime you have with --runtime."
    )
