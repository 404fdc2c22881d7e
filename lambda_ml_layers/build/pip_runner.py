"""The one place that runs pip and pip-compile; turns their failures into actionable errors."""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from ..config.locks import LOCK_COMMAND, LockedPackage
from ..core.command_runner import call
from ..core.errors import LockError
from ..core.runtimes import Runtime, platform_tags
from .pip_failures import NO_SPACE, PipTarget, explain_pip_failure, listed, not_found_requirement, releases_in_folder

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
    temp_dir = tempfile.gettempdir()
    disks = tuple(dict.fromkeys(mount_point(p) for p in (target, Path(temp_dir))))
    where = PipTarget(runtime, arch, target, temp_dir, links_only=find_links is not None, disks=disks)
    versions = {p.name: p.version for p in packages}
    requirements_file = target.parent / f"{target.name}.requirements.txt"
    try:
        if not packages:
            target.mkdir(parents=True, exist_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        requirements_file.write_text(requirement_lines(packages))
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            written = exc.filename or requirements_file  # a failed write() names no file
            raise explain_pip_failure(f"[Errno 28] {NO_SPACE}: '{written}'", versions, where) from None
        raise
    command = install_command(requirements_file, target, runtime, arch, cache_dir, find_links)
    result = call(command, echo=lambda line: on_line(line.strip()), error=None, what="install with pip")
    requirements_file.unlink(missing_ok=True)
    if result.returncode != 0:
        missing = not_found_requirement(result.output)
        if missing is None or find_links is None:
            probe, releases = probe_index(result.output), None
        else:
            files = [f.name for f in find_links.iterdir()] if find_links.is_dir() else []
            probe, releases = "", releases_in_folder(files, missing[0])
        raise explain_pip_failure(result.output, versions, where, probe, _empty_folders(result.output), releases)


def mount_point(path: Path) -> str:
    """The mount point of the filesystem that holds (or would hold) `path`."""
    path = path.absolute()
    while not path.exists() or (not os.path.ismount(path) and path != path.parent):
        path = path.parent
    return str(path)


def index_probe_command(name: str) -> list[str]:
    """`pip index versions NAME` on the install's indexes: every release with an sdist or a wheel for
    this machine, whatever the target. One retry, so an unreachable index prints why even where pip
    is configured not to retry."""
    command = [sys.executable, "-m", "pip", "index", "versions", name, "--pre", "--ignore-requires-python"]
    return [*command, "--disable-pip-version-check", "--retries", "1", "--timeout", "10"]


def probe_index(pip_output: str) -> str:
    """What `pip index versions` says of the package pip found no distribution of ("" for any other
    failure: only that one needs the probe to tell its causes apart)."""
    missing = not_found_requirement(pip_output)
    return "" if missing is None else call(index_probe_command(missing[0]), error=None).output


def _empty_folders(output: str) -> frozenset[str]:
    folders = (Path(f) for f in listed(output, "Looking in links"))
    return frozenset(str(f) for f in folders if f.is_dir() and not any(f.iterdir()))


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
    result = call(command, cwd=cwd, env=env, error=None)
    if result.returncode != 0:
        raise LockError(f"pip-compile failed for {', '.join(sources)} in {cwd}:\n{result.output.strip()[-2000:]}")
