"""The tools that strip and check a layer for its target architecture on this machine.

On a machine of the target's own architecture: binutils' `strip` and the runtime's own interpreter.
For another architecture (arm64 layers built on x86_64): that architecture's binutils
(`aarch64-linux-gnu-strip`, Debian's binutils-aarch64-linux-gnu) and an interpreter of the runtime's
version for that architecture, run under qemu: scripts/bootstrap.py unpacks Debian's into sysroots
under build/toolchains/<arch>/ with one wrapper script per version (bin/pythonX.Y), so everything that
runs "the target interpreter" runs it the same way. Where no interpreter of the runtime's version
exists (arm64 Python 3.12), the sysroot's own dynamic loader under qemu (`loader`) can still tell
whether a shared object maps and links, though not whether it imports. A missing piece is not an error here: it is
named in `missing`, with its fix, and the steps that need it report what they could not do.
"""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .interpreters import ENGINE_REPO, find_interpreter, interpreter_info
from .runtimes import ARCHES, Runtime

# Where scripts/bootstrap.py writes the emulated interpreters' wrappers (it spells the same path).
TOOLCHAINS = ENGINE_REPO / "build" / "toolchains"
# binutils' prefix for a machine's cross tools, as Debian names them.
CROSS_PREFIX = {"aarch64": "aarch64-linux-gnu-", "x86_64": "x86_64-linux-gnu-"}
BOOTSTRAP = "python3 scripts/bootstrap.py"
# The Debian sysroots bootstrap unpacks, oldest glibc first: bookworm's 2.36 is the closest to
# Lambda's python3.12 (Amazon Linux 2023, glibc 2.34).
SYSROOTS = ("bookworm", "trixie")
# The dynamic loader's name in a sysroot's /lib, by machine (the arches bootstrap unpacks sysroots for).
LOADERS = {"aarch64": "ld-linux-aarch64.so.1"}


@dataclass(frozen=True)
class Toolchain:
    arch: str  # Lambda's name: x86_64 or arm64
    machine: str  # the ELF machine of the target: x86_64 or aarch64
    strip: str | None  # the binutils strip that understands the target's ELF files
    python: str | None  # runs code as the target's runtime would: the native interpreter, or a qemu wrapper
    emulated: bool  # `python` runs under qemu: loads and imports are real, timings are not comparable
    missing: tuple[str, ...] = ()  # what is absent (strip, python), each with why it matters and its fix
    # A command prefix running the target's dynamic loader (qemu -L SYSROOT SYSROOT/lib/ld-*.so.1);
    # () when absent. Only sought where `python` is missing: the interpreter's check is the stronger.
    loader: tuple[str, ...] = ()

    def describe(self) -> str:
        """For cache keys and reports: which tools decided what the layer became."""
        strip = Path(self.strip).name if self.strip else "-"
        python = Path(self.python).name if self.python else "-"
        found = Path(self.loader[-1]) if self.loader else None
        loader = f" loader={found.parent.parent.name}/{found.name}" if found else ""
        return f"{self.arch}: strip={strip} python={python} emulated={self.emulated}{loader}"


# How every report labels a time measured in an interpreter run under qemu: emulation makes it many
# times slower than the target's own CPU, so it says nothing about a cold start on Lambda, and no
# ratio or regression gate may put it beside a native figure.
UNDER_QEMU = "under qemu: not comparable to native"


def timing(seconds: float, emulated: bool) -> str:
    """A measured time for a report: '12 s', or '12 s (under qemu: not comparable to native)' (pure)."""
    return f"{seconds:.0f} s" + (f" ({UNDER_QEMU})" if emulated else "")


def emulated_interpreter(runtime: Runtime, machine: str) -> Path:
    """The wrapper bootstrap writes for an interpreter of another machine (it may not exist)."""
    arch = next(name for name, m in ARCHES.items() if m == machine)
    return TOOLCHAINS / arch / "bin" / f"python{runtime.version}"


@cache
def find_toolchain(runtime: Runtime, arch: str, host: str | None = None) -> Toolchain:
    """The target's tools on this machine (`host`: its machine name, platform.machine() when None)."""
    host = host or platform.machine()
    machine = ARCHES[arch]
    if machine == host:
        return Toolchain(arch, machine, shutil.which("strip"), find_interpreter(runtime), emulated=False)
    missing = []
    strip_name = CROSS_PREFIX.get(machine, f"{machine}-linux-gnu-") + "strip"
    strip = shutil.which(strip_name)
    if strip is None:
        missing.append(
            f"no {strip_name} on PATH, so shared objects are not stripped: run `{BOOTSTRAP}` as root "
            f"(it installs Debian's binutils-{machine.replace('_', '-')}-linux-gnu)"
        )
    wrapper = emulated_interpreter(runtime, machine)
    info = interpreter_info(str(wrapper)) if wrapper.exists() else []
    python = str(wrapper) if info and info[1] == runtime.version else None
    loader: tuple[str, ...] = ()
    if python is None:
        why = (
            f"{wrapper} does not run (rerun `{BOOTSTRAP}` as root)"
            if wrapper.exists()
            else f"no {arch} Python {runtime.version} to run under qemu here ({_how_to_get(runtime, machine)})"
        )
        loader = find_loader(machine)
        if loader:
            missing.append(
                f"{why}, so no import can be verified (shared objects are load-checked with the {arch} "
                f"dynamic loader instead: it maps and links them, it does not import them)"
            )
        else:
            missing.append(
                f"{why}, so no import can be verified; and no {arch} dynamic loader to run under qemu-{machine}-static "
                f"(run `{BOOTSTRAP}` as root: it installs qemu-user-static and unpacks the sysroots), so shared "
                f"objects cannot be load-checked either"
            )
    return Toolchain(arch, machine, strip, python, emulated=True, missing=tuple(missing), loader=loader)


def find_loader(machine: str) -> tuple[str, ...]:
    """qemu running the dynamic loader of a sysroot bootstrap unpacked, oldest glibc first (the
    closest to Lambda's), or () when there is none. Only a static qemu: the loader is steered by
    LD_* variables, which would steer a dynamically linked qemu's own loader too."""
    qemu = shutil.which(f"qemu-{machine}-static")
    arch = next(name for name, m in ARCHES.items() if m == machine)
    loader_name = LOADERS.get(machine)
    if qemu is None or loader_name is None:
        return ()
    for suite in SYSROOTS:
        sysroot = TOOLCHAINS / arch / suite
        if (sysroot / "lib" / loader_name).exists():
            return (qemu, "-L", str(sysroot), str(sysroot / "lib" / loader_name))
    return ()


def _how_to_get(runtime: Runtime, machine: str) -> str:
    if machine == "aarch64" and runtime.version == "3.12":
        return (
            "none can be had on this machine: Debian's registry has arm64 CPython 3.11 (bookworm) and 3.13 "
            "(trixie) only, PyPI has no installable CPython, and npm's portable-python downloads its build "
            "from GitHub at install time; build for python3.11 or python3.13 to verify arm64"
        )
    return f"`{BOOTSTRAP}` as root unpacks Debian's"
