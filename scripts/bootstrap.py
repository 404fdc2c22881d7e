#!/usr/bin/env python3
"""Set up a fresh checkout: the tooling's virtualenv and the Python interpreters builds need.

    python3 scripts/bootstrap.py

1. Creates .venv with the host's Python and installs requirements/dev.txt (hash-checked);
   likewise .venv-sam (the SAM CLI, requirements/sam.txt) and .venv-checkov (the template's
   security scan, requirements/checkov.txt), whose pins clash with the tooling's. Each is
   skipped when its lock has not changed since the last run.
2. Finds python3.11/3.12/3.13 (each Lambda runtime's own version compiles its layer's
   bytecode and verifies its imports). Interpreters that pyenv has but PATH lacks are made
   visible in this repo with `pyenv local`, the ordinary pyenv way; missing ones are named
   with how to install them. Only the default runtime's (python3.12) is required.
3. Installs AWS's runtime client (awslambdaric, requirements/lambda-runtime.txt) for each Lambda
   runtime into build/runtime-client/, where the sandbox runs handlers through it (the sandbox
   would install it on first use; doing it here lets later runs work offline).
4. Installs Debian's chromium when it is missing and this runs as root with apt-get: the
   size report's picture is tested in a real headless browser. Otherwise it says how to get
   one; only that test needs it (it skips without it, but fails in CI).
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
# (folder, lock, pip flags): --no-deps for SAM, whose lock is complete but names extras pip
# would otherwise treat as unpinned.
VENVS = (
    (ROOT / ".venv", ROOT / "requirements" / "dev.txt", ()),
    (ROOT / ".venv-sam", ROOT / "requirements" / "sam.txt", ("--no-deps",)),
    (ROOT / ".venv-checkov", ROOT / "requirements" / "checkov.txt", ()),
)
RUNTIME_VERSIONS = ("3.11", "3.12", "3.13")
REQUIRED = "3.12"  # the default runtime in layers/defaults.toml


def say(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


def setup_venv(venv_dir: Path, lock: Path, flags: tuple[str, ...]) -> None:
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    python = venv_dir / "bin" / "python"
    marker = venv_dir / ".lock-sha256"
    name = venv_dir.name
    if python.exists() and marker.exists() and marker.read_text() == digest:
        say(f"{name} is up to date with {lock.relative_to(ROOT)}")
        return
    if not python.exists():
        say(f"creating {name} with {sys.executable} (Python {sys.version.split()[0]})")
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    say(f"installing {lock.relative_to(ROOT)} into {name} (hash-checked)")
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            *flags,
            "-r",
            str(lock),
        ],
        check=True,
    )
    marker.write_text(digest)


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


def setup_chromium() -> None:
    """Debian's chromium for the browser test of `inv size-report`'s picture; never fatal."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        say(f"chromium: {found}")
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        why = "not root" if os.geteuid() != 0 else "no apt-get"
        say(
            f"chromium: not found, and not installed here ({why}). The size report's browser test needs it: "
            "`sudo apt-get install chromium` (Debian/Ubuntu) or your OS's chromium package; it skips without one, "
            "except in CI."
        )
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "chromium"]
    say("chromium: not found; installing Debian's (apt-get install -y chromium)")
    try:
        # A fresh machine's package lists may be empty or stale: update once and retry.
        if subprocess.run(install, env=env).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        say(
            f"chromium: installing it failed ({exc}); see apt's message above. The browser test will skip (fail in CI)."
        )
        return
    say(f"chromium: {shutil.which('chromium')}")


def setup_runtime_client() -> None:
    """awslambdaric for each runtime, through the engine (local/runtime_client.py), which skips what is there."""
    script = (
        "from lambda_ml_layers.core.runtimes import RUNTIMES\n"
        "from lambda_ml_layers.local.runtime_client import runtime_client_dir\n"
        "for runtime in RUNTIMES.values():\n"
        "    print(runtime_client_dir(runtime, 'x86_64'))\n"
    )
    python = ROOT / ".venv" / "bin" / "python"
    if subprocess.run([str(python), "-c", script], cwd=ROOT).returncode != 0:
        say("could not install awslambdaric for the sandbox now (see above); the sandbox tries again on first use.")


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before anything checks the version
        say(f"needs Python 3.11 or newer to run the tooling; this is {sys.version.split()[0]}.")
        return 1
    os.chdir(ROOT)
    try:
        for venv_dir, lock, flags in VENVS:
            setup_venv(venv_dir, lock, flags)
    except subprocess.CalledProcessError as exc:
        say(f"installing the tooling failed (exit {exc.returncode}); see pip's message above.")
        return 1
    setup_runtime_client()
    setup_chromium()
    if not setup_interpreters():
        say(f"python{REQUIRED} is required for the default build; install it and run this again.")
        return 1
    say("ready. Next: .venv/bin/inv build-layers, or .venv/bin/inv deploy --stage local to rehearse a deploy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
