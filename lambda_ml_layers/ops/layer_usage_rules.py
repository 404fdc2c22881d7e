"""Which layer versions are referenced, and which may be pruned: pure rules over what a stage holds.

A version is referenced when a function version ($LATEST included) lists it, when an alias
routes to such a function version, or when a recorded release names it (`inv rollback` must
be able to return to any recorded release). Only unreferenced versions may go, and never the
newest `keep` of a layer, whatever references them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class LayerVersion:
    layer_name: str
    version: int
    arn: str  # the version's ARN: arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION
    created: str = ""


@dataclass(frozen=True)
class FunctionVersion:
    function: str  # the function's name
    version: str  # "$LATEST" or a published number
    layers: tuple[str, ...]  # layer version ARNs, in order


@dataclass(frozen=True)
class Alias:
    function: str
    name: str
    versions: tuple[str, ...]  # the function version it points at, then any with routing weight


@dataclass(frozen=True)
class RecordedRelease:
    number: int
    layer_arns: frozenset[str]  # every layer version ARN the record names (its layers and functions)


@dataclass(frozen=True)
class Usage:
    version: LayerVersion
    latest: int  # the newest version of this layer
    function_versions: tuple[str, ...]  # "name:version"
    aliases: tuple[str, ...]  # "name:alias -> version"
    releases: tuple[int, ...]

    @property
    def referenced(self) -> bool:
        return bool(self.function_versions or self.aliases or self.releases)

    @property
    def status(self) -> str:
        """'latest', 'behind (latest N)', and 'unused' when nothing references it."""
        place = "latest" if self.version.version == self.latest else f"behind (latest {self.latest})"
        return place if self.referenced else f"{place}, unused"


@dataclass(frozen=True)
class Decision:
    usage: Usage
    delete: bool
    reason: str


def usages(
    versions: list[LayerVersion],
    functions: list[FunctionVersion],
    aliases: list[Alias],
    releases: list[RecordedRelease],
) -> list[Usage]:
    """Every layer version with what references it, by layer name then newest first."""
    by_arn: dict[str, list[str]] = defaultdict(list)
    layers_of: dict[tuple[str, str], tuple[str, ...]] = {}
    for function in functions:
        layers_of[(function.function, function.version)] = function.layers
        for arn in function.layers:
            by_arn[arn].append(f"{function.function}:{function.version}")
    alias_refs: dict[str, list[str]] = defaultdict(list)
    for alias in aliases:
        for target in alias.versions:
            for arn in layers_of.get((alias.function, target), ()):
                alias_refs[arn].append(f"{alias.function}:{alias.name} -> {target}")
    release_refs: dict[str, list[int]] = defaultdict(list)
    for release in releases:
        for arn in release.layer_arns:
            release_refs[arn].append(release.number)
    latest: dict[str, int] = {}
    for version in versions:
        latest[version.layer_name] = max(latest.get(version.layer_name, 0), version.version)
    ordered = sorted(versions, key=lambda v: (v.layer_name, -v.version))
    return [
        Usage(
            version=v,
            latest=latest[v.layer_name],
            function_versions=tuple(sorted(set(by_arn[v.arn]))),
            aliases=tuple(sorted(set(alias_refs[v.arn]))),
            releases=tuple(sorted(set(release_refs[v.arn]))),
        )
        for v in ordered
    ]


def prune_decisions(found: list[Usage], keep: int) -> list[Decision]:
    """For each version: delete it or keep it, and why. The newest `keep` of each layer stay."""
    decisions = []
    rank: dict[str, int] = defaultdict(int)
    for usage in sorted(found, key=lambda u: (u.version.layer_name, -u.version.version)):
        rank[usage.version.layer_name] += 1
        decisions.append(_decide(usage, rank[usage.version.layer_name], keep))
    return decisions


def _decide(usage: Usage, rank: int, keep: int) -> Decision:
    if rank <= keep:
        return Decision(usage, False, f"one of the newest {keep}")
    reasons = []
    if usage.function_versions:
        reasons.append(f"used by function version {', '.join(usage.function_versions)}")
    if usage.aliases:
        reasons.append(f"behind alias {', '.join(usage.aliases)}")
    if usage.releases:
        reasons.append(f"recorded in release {', '.join(str(n) for n in usage.releases)}")
    if reasons:
        return Decision(usage, False, "; ".join(reasons))
    return Decision(usage, True, f"unused, older than the newest {keep}")
