"""Why pip could not install: read from what pip printed, never guessed.

pip reports most failures the same way ("No matching distribution found for six==1.16.0"),
whether the index was unreachable, the find-links folder missing, the package or the version
nonexistent, or only the wheel for the target platform absent. The signs that tell them apart
are in its warnings, and in a second look at the index (`pip index versions NAME`, the probe:
every release with an sdist or a wheel for this machine, whatever the target) or, offline, at the
--find-links folder's file names. Each rule here is a pure function of that
text, tested with output captured from real pip runs (tests/unit/pip_outputs/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..config.locks import LOCK_COMMAND
from ..core.errors import InstallError
from ..core.runtimes import Runtime

DEFAULT_INDEX = "https://pypi.org/simple"
NO_SPACE = "No space left on device"

# What urllib3/requests say when an index was never reached (refused, DNS, timeout, TLS, proxy).
_NETWORK_REASON = re.compile(
    r"Failed to establish a new connection: [^\"')]+|Failed to resolve '[^']+' \([^)]*\)|"
    r"Temporary failure in name resolution|Name or service not known|Connection refused|"
    r"Network is unreachable|ConnectTimeoutError|Read timed out|SSLError|ProxyError"
)
_NETWORK_LINE = ("connection broken by", "Could not fetch URL", "WARNING: Retrying")
_UNTRUSTED = re.compile(r"The repository located at (\S+) is not a trusted or secure host and is being ignored")
_NOT_FOUND = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)==(\S+)")
_IGNORED_LOCATION = re.compile(r"Location '([^']+)' is ignored: it is either a non-existing path")
_AVAILABLE = re.compile(r"^Available versions: (.*)$", re.M)
_NO_SPACE_PATH = re.compile(r"\[Errno 28\] No space left on device: '([^']+)'(?: -> '([^']+)')?")


@dataclass(frozen=True)
class PipTarget:
    """What the install was for, so a message can name it."""

    runtime: Runtime
    arch: str
    target: Path  # the folder pip installed into
    temp_dir: str  # where pip unpacks before moving into target (TMPDIR)
    links_only: bool = False  # --no-index: pip looked in the --find-links folders and nowhere else
    disks: tuple[str, ...] = ()  # mount points of target and temp_dir, which outlive the staging folders


def listed(output: str, heading: str) -> list[str]:
    """The comma-separated values of pip's `Looking in indexes:` / `Looking in links:` line."""
    match = re.search(rf"^{heading}: (.*)$", output, re.M)
    return [item.strip() for item in match[1].split(",")] if match else []


def network_failure(text: str) -> str | None:
    """The first reason pip gave for not reaching an index, or None if it reached them."""
    for line in text.splitlines():
        if any(sign in line for sign in _NETWORK_LINE):
            reason = _NETWORK_REASON.search(line)
            return reason[0].strip() if reason else line.strip()[:300]
    return None


def no_space_path(output: str) -> str | None:
    """The file pip was writing when the disk filled, if it said (the copy's destination first)."""
    match = _NO_SPACE_PATH.search(output)
    return (match[2] or match[1]) if match else None


def available_versions(probe: str) -> list[str] | None:
    """Every release `pip index versions` listed; [] when it found none; None when it said nothing."""
    match = _AVAILABLE.search(probe)
    if match:
        return [v.strip() for v in match[1].split(",")]
    return [] if "No matching distribution found" in probe else None


def explain_disk_full(output: str, names: str, where: PipTarget) -> InstallError:
    path = no_space_path(output)
    writing = f" (writing {path})" if path else ""
    disks = " ".join(where.disks or (str(where.target), where.temp_dir))
    return InstallError(
        f"{NO_SPACE} while pip installed {names} into {where.target}{writing}. pip writes there and to "
        f"its temporary folder {where.temp_dir}; either filesystem may be full.\n"
        f"  Fix: free space on them (`df -h {disks}`); deleting the project's build/cache is safe (it is "
        f"rebuilt), or make build/ a symlink to a bigger disk, or point TMPDIR at one. Then try again."
    )


def explain_unreachable(output: str, reason: str, names: str) -> InstallError:
    indexes = listed(output, "Looking in indexes") or [DEFAULT_INDEX]
    return InstallError(
        f"pip could not reach the package index ({', '.join(indexes)}) to install {names}: {reason}.\n"
        f"  Fix: check the network, proxy (HTTPS_PROXY) and index settings (PIP_INDEX_URL, "
        f"PIP_EXTRA_INDEX_URL, `pip config list`); to build offline, pass --find-links with a folder "
        f"holding the locked wheels."
    )


def releases_in_folder(file_names: list[str], name: str) -> list[str]:
    """The versions of `name` among a --find-links folder's wheels and sdists, whatever their platform."""
    wanted = canonicalize_name(name)
    found: dict[str, Version | None] = {}
    for file_name in file_names:
        stem = re.sub(r"(\.whl|\.tar\.gz|\.zip)$", "", file_name)
        if stem == file_name:
            continue
        parts = stem.split("-") if file_name.endswith(".whl") else stem.rsplit("-", 1)
        if len(parts) >= 2 and canonicalize_name(parts[0]) == wanted:
            try:
                found[parts[1]] = Version(parts[1])
            except InvalidVersion:
                found[parts[1]] = None  # a file name pip would not read either: listed last
    # Newest first, as PEP 440 orders them: 2.0.0rc1 is older than 2.0.0.
    return sorted(found, key=lambda v: (found[v] is not None, found[v] or Version("0")), reverse=True)


def explain_not_found(
    output: str,
    probe: str,
    name: str,
    version: str,
    where: PipTarget,
    empty_folders: frozenset[str],
    folder_releases: list[str] | None,
) -> InstallError:
    """pip found no wheel of name==version: missing links folder, missing package, missing release,
    or no wheel for the platform, told apart by every release there is: the probe's list from an
    index, or `folder_releases` (read from the --find-links folder) when pip looked nowhere else."""
    links = listed(output, "Looking in links")
    indexes = listed(output, "Looking in indexes")
    ignored = _IGNORED_LOCATION.findall(output)
    if ignored:
        return InstallError(
            f"The --find-links folder {', '.join(ignored)} does not exist, so pip found no {name}=={version} "
            f"there.\n  Fix: pass --find-links a folder holding the locked wheels (`pip download` them "
            f"into it), or leave --find-links out to install from the package index."
        )
    versions = folder_releases if where.links_only else available_versions(probe)
    if where.links_only and not versions:
        empty = [f for f in links if f in empty_folders]
        state = f" ({', '.join(empty)} is empty)" if empty else ""
        return InstallError(
            f"No wheel of {name}=={version} in {', '.join(links)}, the only place pip looked "
            f"(--find-links without an index){state}.\n  Fix: put the locked wheel there "
            f"(`pip download --no-deps --only-binary=:all: {name}=={version} -d FOLDER` with the layer's "
            f"--python-version and --platform), or build without --find-links to use the index."
        )
    source = ", ".join(indexes + links) or DEFAULT_INDEX
    if versions == []:
        return InstallError(
            f"There is no package named {name} on {source}: pip found no release of it at all.\n"
            f"  Fix: correct the name in the layer's requirements.in (see https://pypi.org/project/{name}/) "
            f"and run `{LOCK_COMMAND}`."
        )
    if versions is not None and version not in versions:
        latest = ", ".join(versions[:5])
        return InstallError(
            f"{name} has no release {version} on {source} (its latest: {latest}).\n"
            f"  Fix: pin a release that exists in the layer's requirements.in and run `{LOCK_COMMAND}`."
        )
    runtime = where.runtime
    return InstallError(
        f"No wheel of {name}=={version} fits {runtime.name} on {where.arch} "
        f"(CPython {runtime.version}, manylinux with glibc <= "
        f"{runtime.glibc[0]}.{runtime.glibc[1]}, as on {runtime.os_name}). "
        f"Fix: choose a release of {name} that ships such a wheel (pin it in the layer's "
        f"requirements.in and run `{LOCK_COMMAND}`), or build for another --runtime/--arch."
    )


def not_found_requirement(output: str) -> tuple[str, str] | None:
    """(name, version) of pip's `No matching distribution found for name==version`, if it said so."""
    match = _NOT_FOUND.search(output)
    return (match[1], match[2]) if match else None


def explain_pip_failure(
    output: str,
    versions: dict[str, str],
    where: PipTarget,
    probe: str = "",
    empty_folders: frozenset[str] = frozenset(),
    folder_releases: list[str] | None = None,
) -> InstallError:
    """The one message for a failed `pip install`: the cause pip's output (and the probe) show, and its fix.
    `versions`: every package asked for, name -> version."""
    names = ", ".join(f"{n}=={v}" for n, v in sorted(versions.items())) or "the packages"
    if NO_SPACE in output or "[Errno 28]" in output:
        return explain_disk_full(output, names, where)
    if "DO NOT MATCH THE HASHES" in output:
        culprits = re.findall(r"^\s+([A-Za-z0-9._-]+)==(\S+) from ", output, flags=re.M)
        named = ", ".join(f"{n}=={v}" for n, v in culprits) or "a package"
        return InstallError(
            f"The downloaded file of {named} does not match the hashes in the lock. Either the "
            f"lock was edited by hand (regenerate it with `{LOCK_COMMAND}`) or the package index "
            f"served a different file than PyPI (check your pip index settings)."
        )
    untrusted = _UNTRUSTED.findall(output)
    indexes = [urlsplit(url).hostname for url in listed(output, "Looking in indexes")]
    if untrusted and all(host in untrusted for host in indexes):  # pip had no index left to look in
        hosts = ", ".join(untrusted)
        return InstallError(
            f"pip ignored the package index on {hosts}: it is plain http, which pip does not trust, so it "
            f"found nothing to install {names} from.\n  Fix: use an https:// index URL, or, for an index you "
            f"trust on your own network, set PIP_TRUSTED_HOST={untrusted[0]}."
        )
    reason = network_failure(output) or network_failure(probe)
    if reason is not None:
        return explain_unreachable(output, reason, names)
    missing = not_found_requirement(output)
    if missing is not None:
        return explain_not_found(output, probe, missing[0], missing[1], where, empty_folders, folder_releases)
    tail = "\n".join(output.splitlines()[-15:])
    return InstallError(f"pip could not install {names} into {where.target}:\n{tail}")
