"""The one place that runs pip and pip-compile; turns their failures into actionable errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import InstallError, LockError
from .locks import LOCK_COMMAND, LockedPackage
from .runtimes import Runtime, platform_tags

# pip settings of the machine that would leak into a lock (local mirrors, find-links,
# constraint files); locks are resolved against the public index only.
_MACHINE_PIP_SETTINGS = (
    "PIP_FIND_LINKS",
    "PIP_EXTRA_INDEX_URL",
    "PIP_INDEX_URL",
    "PIP_CONSTRAINT",
    "PIP_NO_INDEX",
)


def isolated_pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _MACHINE_PIP_SETTINGS}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def requirement_lines(packages: Iterable[LockedPackage]) -> str:
    """A hash-pinned requirements file for exactly these packages."""
    lines = []
    for package in sorted(packages, key=lambda p: p.name):
        hashes = " ".join(f"--hash={h}" for h in package.hashes)
        lines.append(f"{package.name}=={package.version} {hashes}")
    return "\n".join(lines) + "\n"


def install_command(
    requirements_file: Path, target: Path, runtime: Runtime, arch: str, cache_dir: Path, find_links: Path | None
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--target",
        str(target),
        "--implementation",
        "cp",
        "--python-version",
        runtime.version,
        "--only-binary=:all:",
        "--no-deps",
        "--require-hashes",
        "--no-compile",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--cache-dir",
        str(cache_dir),
    ]
    if find_links is not None:
        command += ["--no-index", "--find-links", str(find_links)]
    for tag in platform_tags(runtime, arch):
        command += ["--platform", tag]
    return [*command, "-r", str(requirements_file)]


def install_for_target(
    packages: list[LockedPackage],
    target: Path,
    runtime: Runtime,
    arch: str,
    cache_dir: Path,
    find_links: Path | None = None,
    on_line: Callable[[str], None] = lambda line: None,
) -> None:
    """Install the hash-pinned packages' wheels for the Lambda runtime into `target`."""
    if not packages:
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    requirements_file = target.parent / f"{target.name}.requirements.txt"
    requirements_file.write_text(requirement_lines(packages))
    command = install_command(requirements_file, target, runtime, arch, cache_dir, find_links)
    output: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            on_line(line.strip())
    requirements_file.unlink(missing_ok=True)
    if process.returncode != 0:
        raise explain_pip_failure("\n".join(output), packages, runtime, arch)


def explain_pip_failure(output: str, packages: list[LockedPackage], runtime: Runtime, arch: str) -> InstallError:
    """Name the package at fault and the fix, from what pip printed."""
    versions = {p.name: p.version for p in packages}
    missing = re.search(r"No matching distribution found for ([A-Za-z0-9._-]+)==(\S+)", output)
    if missing:
        name, version = missing[1], missing[2]
        return InstallError(
            f"No wheel of {name}=={version} fits {runtime.name} on {arch} "
            f"(CPython {runtime.version}, manylinux with glibc <= "
            f"{runtime.glibc[0]}.{runtime.glibc[1]}, as on {runtime.os_name}). "
            f"Fix: choose a release of {name} that ships such a wheel (pin it in the layer's "
            f"requirements.in and run `{LOCK_COMMAND}`), or build for another --runtime/--arch."
        )
    if "DO NOT MATCH THE HASHES" in output:
        culprits = re.findall(r"^\s+([A-Za-z0-9._-]+)==(\S+) from ", output, flags=re.M)
        named = ", ".join(f"{n}=={v}" for n, v in culprits) or "a package"
        return InstallError(
            f"The downloaded file of {named} does not match the hashes in the lock. Either the "
            f"lock was edited by hand (regenerate it with `{LOCK_COMMAND}`) or the package index "
            f"served a different file than PyPI (check your pip index settings)."
        )
    tail = "\n".join(output.splitlines()[-15:])
    known = ", ".join(f"{n}=={v}" for n, v in sorted(versions.items()))
    return InstallError(f"pip could not install {known}:\n{tail}")


def pip_compile(
    python: str,
    sources: list[str],
    output: str,
    cwd: Path,
    constraint: str | None = None,
    hashes: bool = True,
    extra_args: Iterable[str] = (),
    regenerate_with: str = LOCK_COMMAND,
) -> None:
    """Run pip-compile (installed in `python`'s environment); the lock's header names `regenerate_with`."""
    command = [
        python,
        "-m",
        "piptools",
        "compile",
        "--quiet",
        "--strip-extras",
        "--allow-unsafe",
        "--no-emit-index-url",
        "--no-emit-find-links",
        "--no-emit-trusted-host",
        "--output-file",
        output,
    ]
    if hashes:
        command.append("--generate-hashes")
    if constraint:
        command += ["--constraint", constraint]
    command += [*extra_args, *sources]
    env = isolated_pip_env()
    env["CUSTOM_COMPILE_COMMAND"] = regenerate_with
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise LockError(f"pip-compile failed for {', '.join(sources)} in {cwd}:\n{result.stderr.strip()[-2000:]}")
