"""`[prune]` of a layer.toml checked into a PruneConfig, and a pruned layer's upstream_tests
selection held to code that always survives (pure; project.py calls these, as it does rules.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .rules import check_keys, strings, table
from .upstream_tests import UpstreamTests

DEFAULT_MANIFEST = "trace.txt"


@dataclass(frozen=True)
class PruneConfig:
    """`[prune]` of a layer.toml: what may go, what always stays, and the trace it follows."""

    packages: tuple[str, ...]  # dotted packages (top-level or subpackages) that may be pruned
    keep: tuple[str, ...]  # dotted prefixes that always survive: the layer's declared contract
    manifest: str = DEFAULT_MANIFEST  # file name in the layer's folder
    # Module prefix -> reason: kept code's imports of pruned modules that can never run on Lambda
    # (a prefix of the importing or of the imported module); any other such import fails the build.
    accepted_imports: dict[str, str] = field(default_factory=dict)
    # `enabled = false` keeps the section checked and documented but builds the layer whole
    # (the shipped layers): pruning is a trade-off a user turns on, not the default.
    enabled: bool = True


def covers(prefixes: Iterable[str], name: str) -> bool:
    """True when `name` is one of `prefixes` or inside one (scipy.stats covers scipy.stats._mstats)."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def line_of(text: str, value: str) -> int | None:
    """The first line of a TOML file's text that holds `value` as a quoted string."""
    for number, line in enumerate(text.splitlines(), start=1):
        if f'"{value}"' in line or f"'{value}'" in line:
            return number
    return None


PRUNE_KEYS = {"enabled", "packages", "keep", "manifest", "accepted_imports"}


def _dotted(value: str) -> bool:
    return bool(value) and all(part.isidentifier() for part in value.split("."))


def prune_settings(raw: dict[str, Any], folder: Path, text: str, problems: list[str]) -> PruneConfig | None:
    """[prune]: packages that may be pruned, keep prefixes inside them, the trace manifest file.
    Each problem names layer.toml and the entry's line."""
    if "prune" not in raw:
        return None
    path = folder / "layer.toml"
    where = f"{path} [prune]"
    section = table(raw, "prune", str(path), problems)
    check_keys(section, PRUNE_KEYS, where, problems)

    def at(value: str) -> str:
        line = line_of(text, value)
        return f"{path}:{line} [prune]" if line else where

    packages = strings(section.get("packages", []), f"{where} packages", problems)
    keep = strings(section.get("keep", []), f"{where} keep", problems)
    manifest = value = section.get("manifest", DEFAULT_MANIFEST)
    if not packages:
        problems.append(f'{where}: packages is empty, so nothing may be pruned. Fix: e.g. packages = ["scipy"].')
    for entry in (*packages, *keep):
        if not _dotted(entry):
            problems.append(f"{at(entry)}: {entry!r} is not a dotted module name (e.g. scipy.stats).")
    for entry in keep:
        if _dotted(entry) and not covers(packages, entry) and not any(covers([entry], p) for p in packages):
            problems.append(
                f"{at(entry)}: keep {entry!r} is outside packages ({', '.join(packages) or 'none'}); only what "
                f"may be pruned needs keeping. Fix: remove it, or add its package to packages."
            )
    if not isinstance(value, str) or not value or "/" in value:
        problems.append(f"{where}: manifest must be a file name in {folder} (default {DEFAULT_MANIFEST!r}).")
        manifest = DEFAULT_MANIFEST
    elif not (folder / manifest).is_file():
        problems.append(
            f"{where}: the trace manifest {folder / manifest} is missing, and pruning without it would remove "
            f"everything outside keep. Fix: `inv trace-layers` writes it (commit it), or set manifest to its name."
        )
    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"{where}: enabled must be true or false (false: the section is checked, the layer whole).")
        enabled = True
    accepted = table(section, "accepted_imports", where, problems)
    if not all(isinstance(v, str) and v.strip() for v in accepted.values()):
        problems.append(f'{where} accepted_imports: give each module a reason (a string), e.g. "x.y" = "why".')
    for entry in accepted:
        if not _dotted(entry):
            problems.append(f"{at(entry)} accepted_imports: {entry!r} is not a dotted module name (e.g. scipy.io).")
    return PruneConfig(
        packages=packages,
        keep=keep,
        manifest=str(manifest),
        accepted_imports={k: str(v) for k, v in accepted.items()},
        enabled=enabled,
    )


def _module_of_test_path(path: str) -> str:
    """A suite path ("scipy/linalg", "scipy/linalg/tests/test_x.py::T") as a dotted name."""
    return path.split("::", 1)[0].removesuffix(".py").strip("/").replace("/", ".")


def suites_in_pruned_code(upstream: UpstreamTests, config: PruneConfig, where: str) -> list[str]:
    """A pruned layer's upstream_tests may only select code that always survives (keep)."""
    problems = []
    for suite in upstream.suites:
        for path in (*suite.paths, *suite.fast):
            module = _module_of_test_path(path)
            if covers(config.packages, module) and not covers(config.keep, module):
                problems.append(
                    f"{where} [upstream_tests] suite {suite.name!r}: {path!r} tests code [prune] may remove (only "
                    f"[prune] keep is sure to survive). Fix: select paths inside keep, or add "
                    f"{module.rsplit('.tests', 1)[0]!r} to [prune] keep."
                )
    return problems
