"""The rules of a size comparison: two build reports (report.py's JSON) in, what changed and why out.

Pure functions over the report data; nothing here reads files or reaches AWS. A report's layer
gives `packages` (name -> version), `package_bytes` (name -> unzipped bytes, "(other)" for files
no package owns), `provided_by_base` (name -> the base layer that ships it) and
`removed_bytes_by_rule` (strip rule or step -> bytes it removed); its functions give totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.runtimes import LAMBDA_UNZIPPED_LIMIT, MB

OTHER = "(other)"  # report.py's bucket for files no package owns


@dataclass(frozen=True)
class PackageChange:
    name: str
    before: int  # unzipped bytes in the base (0 when added)
    after: int  # unzipped bytes now (0 when removed)
    why: str

    @property
    def delta(self) -> int:
        return self.after - self.before


@dataclass(frozen=True)
class LayerChange:
    name: str
    before: int  # unzipped bytes (0 for a new layer)
    after: int
    budget_bytes: int  # 0 for a layer that is gone
    status: str  # "added", "removed", "unchanged" (same zip), "changed"
    packages: list[PackageChange] = field(default_factory=list)  # only those whose bytes or version moved
    rules: dict[str, int] = field(default_factory=dict)  # rule/step -> change in bytes it removes

    @property
    def delta(self) -> int:
        return self.after - self.before

    @property
    def budget_left(self) -> int:
        return self.budget_bytes - self.after


@dataclass(frozen=True)
class FunctionRoom:
    name: str
    total_bytes: int  # code plus layers, unzipped
    before: int | None  # the base's total (None: not in the base)
    limit_bytes: int
    headroom_bytes: int  # the margin the build keeps free (inv build-layers --headroom-mb)

    @property
    def left(self) -> int:
        """Bytes left under Lambda's limit."""
        return self.limit_bytes - self.total_bytes

    @property
    def delta(self) -> int | None:
        return None if self.before is None else self.total_bytes - self.before


@dataclass(frozen=True)
class SizeDiff:
    base_label: str  # what the base is, in words ("release 3 of stage local", a path, "nothing")
    has_base: bool
    layers: list[LayerChange]
    functions: list[FunctionRoom]
    failures: list[str]  # the current build's own failures

    @property
    def delta(self) -> int:
        return sum(layer.delta for layer in self.layers)


def _mb(size: int, signed: bool = False) -> str:
    return f"{size / MB:+,.2f} MB" if signed else f"{size / MB:,.2f} MB"


def package_why(name: str, before: dict[str, Any] | None, after: dict[str, Any] | None, rules: dict[str, int]) -> str:
    """Why one package's bytes moved in one layer. `before`/`after` are the layer's report entries."""
    old_version = (before or {}).get("packages", {}).get(name)
    new_version = (after or {}).get("packages", {}).get(name)
    in_before = before is not None and name in before.get("package_bytes", {})
    in_after = after is not None and name in after.get("package_bytes", {})
    if name == OTHER:
        return "files no package owns (caches, top-level modules)"
    if not in_before and in_after:
        moved_from = (before or {}).get("provided_by_base", {}).get(name)
        if moved_from:
            return f"package added ({new_version}): no longer taken from base layer {moved_from}"
        return f"package added ({new_version})" if new_version else "package added"
    if in_before and not in_after:
        base_layer = (after or {}).get("provided_by_base", {}).get(name)
        if base_layer:
            return f"removed: now provided by base layer {base_layer}"
        return f"package removed (was {old_version})" if old_version else "package removed"
    if old_version != new_version:
        return f"version {old_version} -> {new_version}"
    changed = [f"{rule} {_mb(-delta, signed=True)}" for rule, delta in sorted(rules.items()) if delta]
    if changed:
        return f"same version {new_version}; strip rules changed ({', '.join(changed)} in this layer)"
    return f"same version {new_version}; the build changed (bytecode or shared-object strip)"


def rule_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, int]:
    """Per strip rule or step: how many more bytes it removes now (negative: fewer)."""
    old = (before or {}).get("removed_bytes_by_rule", {})
    new = (after or {}).get("removed_bytes_by_rule", {})
    return {rule: new.get(rule, 0) - old.get(rule, 0) for rule in dict.fromkeys([*old, *new])}


def layer_change(name: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> LayerChange:
    """One layer compared; `None` for a side the layer is missing from."""
    # A layer new or gone has no rule changes to speak of, only its packages.
    both = before is not None and after is not None
    rules = {rule: delta for rule, delta in rule_changes(before, after).items() if delta and both}
    old_bytes = (before or {}).get("package_bytes", {})
    new_bytes = (after or {}).get("package_bytes", {})
    old_versions = (before or {}).get("packages", {})
    new_versions = (after or {}).get("packages", {})
    packages = [
        PackageChange(pkg, old_bytes.get(pkg, 0), new_bytes.get(pkg, 0), package_why(pkg, before, after, rules))
        for pkg in dict.fromkeys([*new_bytes, *old_bytes])
        if old_bytes.get(pkg) != new_bytes.get(pkg) or old_versions.get(pkg) != new_versions.get(pkg)
    ]
    packages.sort(key=lambda change: (-abs(change.delta), change.name))
    if before is None:
        status = "added"
    elif after is None:
        status = "removed"
    elif before.get("sha256") and before.get("sha256") == after.get("sha256"):
        status = "unchanged"
    else:
        status = "changed"
    return LayerChange(
        name=name,
        before=int((before or {}).get("unzipped_bytes", 0)),
        after=int((after or {}).get("unzipped_bytes", 0)),
        budget_bytes=int((after or {}).get("budget_bytes", 0)),
        status=status,
        packages=packages,
        rules=rules,
    )


def compare(current: dict[str, Any], base: dict[str, Any] | None, base_label: str) -> SizeDiff:
    """Today's report against the base report (None: against nothing, every package is new)."""
    old_layers = {layer["name"]: layer for layer in (base or {}).get("layers", [])}
    new_layers = {layer["name"]: layer for layer in current.get("layers", [])}
    layers = [
        layer_change(name, old_layers.get(name), new_layers.get(name))
        for name in dict.fromkeys([*new_layers, *old_layers])
    ]
    old_totals = {fn["name"]: fn["total_bytes"] for fn in (base or {}).get("functions", [])}
    functions = [
        FunctionRoom(
            name=fn["name"],
            total_bytes=int(fn["total_bytes"]),
            before=old_totals.get(fn["name"]),
            limit_bytes=int(fn.get("limit_bytes", LAMBDA_UNZIPPED_LIMIT)),
            headroom_bytes=int(fn.get("headroom_bytes", 0)),
        )
        for fn in current.get("functions", [])
    ]
    return SizeDiff(base_label, base is not None, layers, functions, list(current.get("failures", [])))


def verdict(diff: SizeDiff) -> str:
    """One line: FAIL (a function over Lambda's limit, a layer over its budget, or a failed build),
    WARN (a function inside the headroom the build keeps free), else OK; then the overall change
    and the tightest function."""
    over_limit = [fn.name for fn in diff.functions if fn.left < 0]
    over_budget = [layer.name for layer in diff.layers if layer.budget_bytes and layer.budget_left < 0]
    in_margin = [fn.name for fn in diff.functions if 0 <= fn.left < fn.headroom_bytes]
    change = f"layers {_mb(diff.delta, signed=True)} vs {diff.base_label}" if diff.has_base else "no base to compare"
    tightest = min(diff.functions, key=lambda fn: fn.left, default=None)
    room = ""
    if tightest:
        room = f"; tightest function {tightest.name}: {_mb(tightest.left)} left of {tightest.limit_bytes:,} bytes"
    if diff.failures or over_limit or over_budget:
        culprits = ", ".join([*over_limit, *over_budget]) or f"{len(diff.failures)} build failure(s)"
        return f"FAIL: over a limit ({culprits}); {change}{room}"
    if in_margin:
        return f"WARN: inside the kept headroom ({', '.join(in_margin)}); {change}{room}"
    return f"OK: {change}{room}"
