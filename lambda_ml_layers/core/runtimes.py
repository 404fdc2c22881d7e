"""Facts about Lambda's Python runtimes and the wheel tags each one accepts."""

from __future__ import annotations

from dataclasses import dataclass

LAMBDA_UNZIPPED_LIMIT = 262_144_000  # function code plus all its layers, in bytes
LAMBDA_MAX_LAYERS = 5
MB = 1_000_000


@dataclass(frozen=True)
class Runtime:
    name: str  # e.g. "python3.12", as Lambda and SAM spell it
    version: str  # "3.12"
    glibc: tuple[int, int]  # of the Amazon Linux the runtime runs on
    os_name: str


RUNTIMES: dict[str, Runtime] = {
    "python3.11": Runtime("python3.11", "3.11", (2, 26), "Amazon Linux 2"),
    "python3.12": Runtime("python3.12", "3.12", (2, 34), "Amazon Linux 2023"),
    "python3.13": Runtime("python3.13", "3.13", (2, 34), "Amazon Linux 2023"),
}

# Lambda's architecture names, and the machine names wheels use for them.
ARCHES: dict[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}


def platform_tags(runtime: Runtime, arch: str) -> list[str]:
    """Every manylinux tag the runtime's glibc accepts, newest first.

    pip's `--platform manylinux2014_x86_64` alone refuses manylinux_2_28 wheels and so
    silently picks older releases; passing each tag up to the runtime's glibc avoids that.
    """
    machine = ARCHES[arch]
    major, newest = runtime.glibc
    tags = [f"manylinux_{major}_{minor}_{machine}" for minor in range(newest, 16, -1)]
    tags.append(f"manylinux2014_{machine}")
    if machine == "x86_64":
        tags += [f"manylinux_2_{minor}_{machine}" for minor in range(16, 4, -1)]
        tags += [f"manylinux2010_{machine}", f"manylinux1_{machine}"]
    return tags


def python_lib_dir(runtime: Runtime) -> str:
    """The site-packages path Lambda adds under a layer's /opt/python."""
    return f"python/lib/python{runtime.version}/site-packages"
