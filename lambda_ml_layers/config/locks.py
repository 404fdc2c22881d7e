"""Read pip-tools locks and decide whether they can be trusted (pure: text in, problems out).

A lock is refused when it lacks hashes, is stale against its `requirements.in`, or pins
a version that differs from `layers/resolution.txt`, the one resolution of all layers
together that keeps one package at one version in every layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..core.errors import LockError, collect

LOCK_COMMAND = "nox -s lock"
RESOLUTION_FILE = "resolution.txt"

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>[^\s;\\]+)")


@dataclass(frozen=True)
class LockedPackage:
    name: str  # canonical: lower case, dashes
    version: str
    hashes: tuple[str, ...]
    via: tuple[str, ...]  # what pulled it in, as pip-compile annotates it


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(number of the first physical line, text) of each line, `\\` continuations joined."""
    lines: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        start, head = pending if pending is not None else (number, "")
        joined = head + line
        if joined.endswith("\\"):
            pending = (start, joined[:-1] + " ")
        else:
            lines.append((start, joined))
            pending = None
    if pending is not None:
        lines.append(pending)
    return lines


def _refusal(source: str, number: int, line: str, why: str) -> str:
    return (
        f"{source}:{number}: {line[:80]!r} {why}. A lock holds only hashed name==version pins and "
        f"pip-compile's comments; regenerate it with `{LOCK_COMMAND}`."
    )


def parse_lock(text: str, source: str = "lock") -> dict[str, LockedPackage]:
    """Parse pip-compile output into packages by canonical name.

    Only `name==version` pins, their `--hash` options and comments are accepted: pip would
    obey an option line (`-e .`, `--index-url`, `-r other.txt`) the lock checks never see,
    and of two pins of one package pip would refuse or take either, so both are LockErrors.
    """
    packages: dict[str, LockedPackage] = {}
    pinned_at: dict[str, int] = {}
    problems: list[str] = []
    current: dict[str, object] | None = None
    via: list[str] = []

    def finish() -> None:
        if current is not None:
            name = str(current["name"])
            packages[name] = LockedPackage(
                name=name,
                version=str(current["version"]),
                hashes=tuple(current["hashes"]),  # type: ignore[arg-type]
                via=tuple(via),
            )

    for number, line in _logical_lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            note = stripped.lstrip("#").strip()
            if current is not None and note and note != "via":
                via.append(note.removeprefix("via ").strip())
            continue
        if stripped.startswith("-"):
            problems.append(_refusal(source, number, stripped, "is an option line, which pip would obey"))
            continue
        match = _PIN.match(stripped)
        if not match:
            problems.append(_refusal(source, number, stripped, "cannot read the line: it is not a name==version pin"))
            continue
        extra = [word for word in stripped[match.end() :].split() if not word.startswith("--hash=")]
        if extra:
            problems.append(_refusal(source, number, stripped, f"has {' '.join(extra)!r} after the pin"))
            continue
        name = canonicalize_name(match["name"])
        if name in pinned_at:
            problems.append(
                f"{source}:{number}: pins {name} again ({match['version']}); line {pinned_at[name]} pinned it "
                f"already. A lock pins each package once; regenerate it with `{LOCK_COMMAND}`."
            )
            continue
        pinned_at[name] = number
        finish()
        via = []
        current = {"name": name, "version": match["version"], "hashes": re.findall(r"--hash=(\S+)", stripped)}
    finish()
    collect(problems, LockError, f"{source} is not a lock as pip-compile writes it:")
    return packages


def parse_requirements_in(text: str, source: str) -> list[Requirement]:
    """The direct requirements of a `requirements.in` (comments and options ignored)."""
    requirements = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content or content.startswith("-"):
            continue
        try:
            requirements.append(Requirement(content))
        except InvalidRequirement as exc:
            raise LockError(f"{source}:{number}: not a valid requirement {content!r} ({exc}).") from None
    return requirements


def lock_problems(
    requirements: list[Requirement],
    lock: dict[str, LockedPackage],
    resolution: dict[str, LockedPackage] | None,
    lock_name: str,
) -> list[str]:
    """Every reason the lock cannot be used, each naming the lock, the package and the fix."""
    problems = []
    fix = f"run `{LOCK_COMMAND}`"
    hashless = sorted(p.name for p in lock.values() if not p.hashes)
    if hashless:
        problems.append(
            f"{lock_name}: no --hash for {', '.join(hashless)}; the build installs with "
            f"--require-hashes. Regenerate it with `{LOCK_COMMAND}` (pip-compile --generate-hashes)."
        )
    wanted = {canonicalize_name(r.name): r for r in requirements}
    for name, requirement in sorted(wanted.items()):
        pinned = lock.get(name)
        if pinned is None:
            problems.append(f"{lock_name} is stale: {requirement} is in requirements.in but not locked; {fix}.")
        elif not requirement.specifier.contains(pinned.version, prereleases=True):
            problems.append(
                f"{lock_name} is stale: requirements.in asks for {requirement} but the lock pins "
                f"{name}=={pinned.version}; {fix}."
            )
    for package in sorted(lock.values(), key=lambda p: p.name):
        direct = any(v.startswith("-r ") for v in package.via)
        if direct and package.name not in wanted:
            problems.append(
                f"{lock_name} is stale: it pins {package.name} as a direct requirement, but "
                f"requirements.in no longer lists it; {fix}."
            )
        if resolution is not None:
            shared = resolution.get(package.name)
            if shared is None or shared.version != package.version:
                seen = shared.version if shared else "nothing"
                problems.append(
                    f"{lock_name} pins {package.name}=={package.version} but layers/{RESOLUTION_FILE} "
                    f"has {seen}; every layer must use one resolution. {fix.capitalize()}."
                )
    return problems


@dataclass(frozen=True)
class LayerLock:
    layer: str
    packages: dict[str, LockedPackage]
    text: str


def read_layer_lock(layer: str, requirements_in: Path, lock_path: Path, layers_dir: Path) -> LayerLock:
    """Read and check one layer's lock; raise LockError naming every problem."""
    if not requirements_in.exists():
        raise LockError(f"{requirements_in} is missing: list what layer {layer!r} provides there.")
    if not lock_path.exists():
        raise LockError(f"{lock_path} is missing; create it with `{LOCK_COMMAND}`.")
    text = lock_path.read_text()
    packages = parse_lock(text, str(lock_path))
    requirements = parse_requirements_in(requirements_in.read_text(), str(requirements_in))
    resolution_path = layers_dir / RESOLUTION_FILE
    resolution = None
    if resolution_path.exists():
        resolution = parse_lock(resolution_path.read_text(), str(resolution_path))
    problems = lock_problems(requirements, packages, resolution, str(lock_path))
    if resolution is None:
        problems.append(f"{resolution_path} is missing; create it with `{LOCK_COMMAND}`.")
    collect(problems, LockError, f"The lock of layer {layer!r} cannot be used:")
    return LayerLock(layer=layer, packages=packages, text=text)
