#!/usr/bin/env python3
"""Set up a fresh checkout: the tooling's virtualenv and the Python interpreters builds need.

    python3 scripts/bootstrap.py

1. Creates .venv with the host's Python and installs requirements/dev.txt (hash-checked);
   skipped when the lock has not changed since the last run.
2. Finds python3.11/3.12/3.13 (each Lambda runtime's own version compiles its layer's
   bytecode and verifies its imports). Interpreters that pyenv has but PATH lacks are made
   visible in this repo with `pyenv local`, the ordinary pyenv way; missing ones are named
   with how to install them. Only the default runtime's (python3.12) is required.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements" / "dev.txt"
MARKER = VENV / ".dev-lock-sha256"
RUNTIME_VERSIONS = ("3.11", "3.12", "3.13")
REQUIRED = "3.12"  # the default runtime in layers/defaults.toml


def say(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


def setup_venv() -> None:
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    python = VENV / "bin" / "python"
    if python.exists() and MARKER.exists() and MARKER.read_text() == digest:
        say(".venv is up to date with requirements/dev.txt")
        return
    if not python.exists():
        say(f"creating .venv with {sys.executable} (Python {sys.version.split()[0]})")
        venv.EnvBuilder(with_pip=True).create(VENV)
    say("installing the tooling from requirements/dev.txt (hash-checked)")
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "-r",
            str(LOCK),
        ],
        check=True,
    )
    MARKER.write_text(digest)


def works(command: str, version: str) -> bool:
    path = shutil.which(command)
    if path is None:
        return False
    result = subprocess.run(
        [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        # pyenv's shim for this script pinned PYENV_VERSION to the host's version; it would
        # override the .python-version file written below.
        env={k: v for k, v in os.environ.items() if k != "PYENV_VERSION"},
    )
    return result.returncode == 0 and result.stdout.strip() == version


def pyenv_versions() -> list[str]:
    if shutil.which("pyenv") is None:
        return []
    result = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True)
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def setup_interpreters() -> bool:
    missing = [v for v in RUNTIME_VERSIONS if not works(f"python{v}", v)]
    installed = pyenv_versions()
    if missing and installed:
        host = f"{sys.version_info[0]}.{sys.version_info[1]}"
        wanted = [host, *[v for v in RUNTIME_VERSIONS if v != host]]
        chosen = []
        for version in wanted:
            matches = sorted(
                (v for v in installed if v.startswith(version + ".") and v.replace(".", "").isdigit()),
                key=lambda v: [int(p) for p in v.split(".")],
            )
            if matches:
                chosen.append(matches[-1])
        if chosen:
            say(f"pyenv local {' '.join(chosen)}  (makes pyenv's interpreters visible in this repo)")
            subprocess.run(["pyenv", "local", *chosen], cwd=ROOT, check=True)
        missing = [v for v in RUNTIME_VERSIONS if not works(f"python{v}", v)]
    for version in RUNTIME_VERSIONS:
        if version in missing:
            say(
                f"python{version}: not found. Builds for the python{version} Lambda runtime need it; "
                f"install it with `pyenv install {version}` (then run this again) or your OS's packages."
            )
        else:
            say(f"python{version}: {shutil.which(f'python{version}')}")
    return REQUIRED not in missing


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before anything checks the version
        say(f"needs Python 3.11 or newer to run the tooling; this is {sys.version.split()[0]}.")
        return 1
    os.chdir(ROOT)
    try:
        setup_venv()
    except subprocess.CalledProcessError as exc:
        say(f"installing the tooling failed (exit {exc.returncode}); see pip's message above.")
        return 1
    if not setup_interpreters():
        say(f"python{REQUIRED} is required for the default build; install it and run this again.")
        return 1
    say("ready. Next: .venv/bin/inv build-layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
