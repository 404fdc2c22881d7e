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
5. For arm64 (Graviton) layers built on this x86_64 machine: Debian's aarch64 binutils (strip,
   readelf) and qemu-user-static, and arm64 interpreters unpacked into sysroots under
   build/toolchains/arm64/ (bookworm's python3.11, trixie's python3.13 with trixie's own libc),
   each run through a wrapper `build/toolchains/arm64/bin/pythonX.Y` (qemu-aarch64 -L SYSROOT).
   Debian's packages are fetched with a private apt configuration for arm64, so the host's
   apt sources, architectures and installed packages are left as they were. No arm64 CPython
   3.12 is reachable from Debian, PyPI or npm (npm's portable-python downloads from GitHub at
   install time), so python3.12 arm64 layers are stripped under the arm64 dynamic loader's check but their
   imports cannot be verified (exit 31 unless --accept-unverified). Skipped, saying why, when not
   root or without apt-get; never fatal.
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
ARM64_PACKAGES = ("binutils-aarch64-linux-gnu", "qemu-user-static")
# The engine looks for the wrappers here (lambda_ml_layers/core/toolchains.py says the same).
ARM64_DIR = ROOT / "build" / "toolchains" / "arm64"
# (suite, python version): Debian suites with an arm64 CPython of a Lambda runtime's version.
# libstdc++6: manylinux wheels (numpy, scipy, pandas) link to the system's, as Lambda's has one.
ARM64_SYSROOTS = (("bookworm", "3.11"), ("trixie", "3.13"))
ARM64_EXTRA = ("libstdc++6",)
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
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
    say("chromium: not found; installing Debian's (apt-get install -y chromium)")
    try:
        apt_install(("chromium",), env)
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


def apt_install(packages: tuple[str, ...], env: dict[str, str], *options: str) -> None:
    install = ["apt-get", "install", "-y", *options, *packages]
    # A fresh machine's package lists may be empty or stale: update once and retry.
    if subprocess.run(install, env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def private_apt(suite: str) -> list[str]:
    """apt-get options for an arm64-only view of one Debian suite, all state under build/: the host's
    sources, dpkg architectures and installed packages are neither read nor changed."""
    root = ARM64_DIR / f"apt-{suite}"
    for sub in ("lists/partial", "archives/partial", "etc/sources.list.d", "etc/preferences.d"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "status").touch()
    (root / "etc" / "sources.list").write_text(
        f"deb [arch=arm64 signed-by={DEBIAN_KEYRING}] http://deb.debian.org/debian {suite} main\n"
    )
    return [
        "-o", "APT::Architecture=arm64",
        "-o", "APT::Architectures::=arm64",
        "-o", f"Dir::Etc={root / 'etc'}",
        "-o", f"Dir::Etc::SourceList={root / 'etc' / 'sources.list'}",
        "-o", f"Dir::Etc::SourceParts={root / 'etc' / 'sources.list.d'}",
        "-o", f"Dir::Etc::Parts={root / 'etc'}/apt.conf.d",
        "-o", f"Dir::Etc::PreferencesParts={root / 'etc' / 'preferences.d'}",
        "-o", f"Dir::State::Lists={root / 'lists'}",
        "-o", f"Dir::State::status={root / 'status'}",
        "-o", f"Dir::Cache={root}",
        "-o", f"Dir::Cache::Archives={root / 'archives'}",
        "-o", "Debug::NoLocking=1",
    ]  # fmt: skip


def qemu_command() -> str | None:
    return shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")


def arm64_python_works(wrapper: Path, version: str) -> bool:
    if not wrapper.exists():
        return False
    result = subprocess.run(
        [str(wrapper), "-I", "-c", "import platform, sys; print(platform.machine(), '%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    return result.returncode == 0 and result.stdout.split() == ["aarch64", version]


def compile_stdlib(sysroot: Path, version: str, wrapper: Path) -> None:
    """Debian ships the standard library without bytecode (its postinst compiles it): without it,
    every import under qemu compiles from source, ten times slower than native, and a layer's
    import check runs out of time. The host's pythonX.Y writes the same bytecode, far faster."""
    stdlib = sysroot / "usr" / "lib" / f"python{version}"
    marker = sysroot / ".stdlib-compiled"  # not __pycache__: running the interpreter makes that
    if marker.exists():
        return
    compiler = shutil.which(f"python{version}") if works(f"python{version}", version) else None
    say(f"arm64 python{version}: compiling its standard library's bytecode ({compiler or 'under qemu'})")
    subprocess.run(
        [compiler or str(wrapper), "-m", "compileall", "-q", "-j0", "-x", "lib2to3|test", str(stdlib)],
        stdout=subprocess.DEVNULL,
        check=False,  # a file that does not compile (a test fixture) stays source, as Debian's would
    )
    marker.touch()


def setup_arm64_sysroot(suite: str, version: str, qemu: str, env: dict[str, str]) -> None:
    wrapper = ARM64_DIR / "bin" / f"python{version}"
    sysroot = ARM64_DIR / suite
    if arm64_python_works(wrapper, version):
        compile_stdlib(sysroot, version, wrapper)
        say(f"arm64 python{version}: {wrapper} (Debian {suite}, under qemu)")
        return
    options = private_apt(suite)
    say(f"arm64 python{version}: fetching Debian {suite}'s arm64 python{version} into {sysroot.relative_to(ROOT)}")
    subprocess.run(["apt-get", *options, "update"], env=env, check=True, stdout=subprocess.DEVNULL)
    archives = ARM64_DIR / f"apt-{suite}" / "archives"
    for old in archives.glob("*.deb"):
        old.unlink()
    # --download-only with an empty status: apt's own resolver names every dependency; nothing is installed.
    subprocess.run(
        ["apt-get", *options, "install", "--download-only", "-y", "--no-install-recommends",
         f"python{version}", *ARM64_EXTRA],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    shutil.rmtree(sysroot, ignore_errors=True)
    sysroot.mkdir(parents=True)
    # Merged /usr, as Debian lays it out: the loader's path in every arm64 binary is /lib/ld-linux-aarch64.so.1.
    (sysroot / "usr" / "lib").mkdir(parents=True)
    (sysroot / "usr" / "bin").mkdir()
    for link in ("lib", "bin", "sbin"):
        target = "usr/lib" if link == "lib" else f"usr/{link}"
        (sysroot / "usr" / link).mkdir(exist_ok=True)
        (sysroot / link).symlink_to(target)
    for deb in sorted(archives.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(sysroot)], check=True)
        deb.unlink()  # unpacked: the sysroot is what runs
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(
        "#!/bin/sh\n"
        f"# Debian {suite}'s arm64 python{version} under qemu, with its own libc (written by scripts/bootstrap.py).\n"
        f'exec {qemu} -L "{sysroot}" "{sysroot}/usr/bin/python{version}" "$@"\n'
    )
    wrapper.chmod(0o755)
    if not arm64_python_works(wrapper, version):
        raise OSError(f"{wrapper} does not run an aarch64 Python {version}")
    compile_stdlib(sysroot, version, wrapper)
    say(f"arm64 python{version}: {wrapper} (Debian {suite}, under qemu)")


def setup_arm64() -> None:
    """What arm64 layers need on this x86_64 machine; never fatal: without it they build unverified."""
    have_tools = shutil.which("aarch64-linux-gnu-strip") and qemu_command()
    root_with_apt = os.geteuid() == 0 and shutil.which("apt-get") is not None and shutil.which("dpkg") is not None
    if not root_with_apt:
        why = "not root" if os.geteuid() != 0 else "no apt-get/dpkg"
        if not have_tools:
            say(
                f"arm64: not set up here ({why}). arm64 layers then build unstripped and unverified: install "
                f"{' and '.join(ARM64_PACKAGES)} (Debian/Ubuntu: `sudo apt-get install {' '.join(ARM64_PACKAGES)}`), "
                "then run this again as root to unpack the arm64 interpreters."
            )
        else:
            say(f"arm64: interpreters not unpacked ({why}): run this again as root with apt-get to add them.")
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        if not have_tools:
            say(f"arm64: installing {' '.join(ARM64_PACKAGES)} (apt-get install -y)")
            apt_install(ARM64_PACKAGES, env, "--no-install-recommends")
        qemu = qemu_command()
        if qemu is None:
            raise OSError("qemu-user-static is installed but neither qemu-aarch64-static nor qemu-aarch64 is on PATH")
        for suite, version in ARM64_SYSROOTS:
            setup_arm64_sysroot(suite, version, qemu, env)
    except (subprocess.CalledProcessError, OSError) as exc:
        say(
            f"arm64: setting it up failed ({exc}); see apt's message above. arm64 layers will build "
            "unverified (and a build then exits 'not verified' unless --accept-unverified)."
        )
        return
    say(
        "arm64 python3.12: no arm64 CPython 3.12 is reachable here (Debian has 3.11 and 3.13, PyPI and npm "
        "none that installs offline); python3.12 arm64 layers are stripped under the arm64 dynamic loader's check, "
        "but their imports cannot be verified (exit 31 unless --accept-unverified)."
    )


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
    # Interpreters first: the arm64 sysroots' bytecode is compiled by the host's pythonX.Y when it
    # is visible, far faster than under qemu.
    found = setup_interpreters()
    setup_runtime_client()
    setup_chromium()
    setup_arm64()
    if not found:
        say(f"python{REQUIRED} is required for the default build; install it and run this again.")
        return 1
    say("ready. Next: .venv/bin/inv build-layers, or .venv/bin/inv deploy --stage local to rehearse a deploy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
