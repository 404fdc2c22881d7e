"""A SizeDiff as text: a terminal table, JSON for tools, Markdown for a pull-request comment."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ..core.runtimes import MB
from .diff import SizeDiff, verdict

FORMATS = ("table", "json", "markdown")


def _mb(size: int) -> str:
    return f"{size / MB:,.2f}"


def _signed(size: int | None) -> str:
    if size is None:
        return "new"
    return f"{size / MB:+,.2f}" if size else "0"


def to_data(diff: SizeDiff) -> dict[str, Any]:
    data = asdict(diff)
    data["delta_bytes"] = diff.delta
    data["verdict"] = verdict(diff)
    for layer, entry in zip(diff.layers, data["layers"], strict=True):
        entry["delta_bytes"] = layer.delta
        entry["budget_left_bytes"] = layer.budget_left
        for package, package_entry in zip(layer.packages, entry["packages"], strict=True):
            package_entry["delta_bytes"] = package.delta
    for function, entry in zip(diff.functions, data["functions"], strict=True):
        entry["left_bytes"] = function.left
        entry["delta_bytes"] = function.delta
    return data


def to_json(diff: SizeDiff) -> str:
    return json.dumps(to_data(diff), indent=2)


def _rows(diff: SizeDiff) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Layer, package and function rows shared by the table and the Markdown."""
    layers: list[tuple[str, ...]] = [
        (
            layer.name,
            layer.status,
            _mb(layer.before),
            _mb(layer.after),
            _signed(layer.delta),
            _mb(layer.budget_left) if layer.budget_bytes else "-",
            ", ".join(f"{rule} {-delta / MB:+,.2f}" for rule, delta in layer.rules.items()) or "-",
        )
        for layer in diff.layers
    ]
    packages: list[tuple[str, ...]] = [
        (layer.name, package.name, _mb(package.before), _mb(package.after), _signed(package.delta), package.why)
        for layer in diff.layers
        for package in layer.packages
    ]
    functions: list[tuple[str, ...]] = [
        (fn.name, _mb(fn.total_bytes), _signed(fn.delta), _mb(fn.left), f"{fn.total_bytes / fn.limit_bytes:.0%}")
        for fn in diff.functions
    ]
    return layers, packages, functions


LAYER_HEADER = ("layer", "status", "before MB", "now MB", "change MB", "budget left MB", "strip rules (MB)")
PACKAGE_HEADER = ("layer", "package", "before MB", "now MB", "change MB", "why")
FUNCTION_HEADER = ("function", "total MB", "change MB", "left under limit MB", "of limit")


def _aligned(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    head = "  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()
    return [head, "  ".join("-" * width for width in widths), *lines]


def to_table(diff: SizeDiff) -> str:
    layers, packages, functions = _rows(diff)
    lines = [f"Size report: this build against {diff.base_label} (MB = 1,000,000 bytes)", ""]
    lines += _aligned(LAYER_HEADER, layers)
    lines += ["", "Packages that changed:"]
    lines += _aligned(PACKAGE_HEADER, packages) if packages else ["  none"]
    if functions:
        lines += ["", f"Functions (Lambda's limit: {diff.functions[0].limit_bytes:,} bytes unzipped):"]
        lines += _aligned(FUNCTION_HEADER, functions)
    lines += [*[f"build failure: {failure}" for failure in diff.failures], "", verdict(diff)]
    return "\n".join(lines)


def _markdown_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(header), "| " + " | ".join("---" for _ in header) + " |", *[line(row) for row in rows]]


def to_markdown(diff: SizeDiff) -> str:
    """For a pull-request comment: the verdict first, details folded."""
    layers, packages, functions = _rows(diff)
    lines = [f"### Layer sizes: {verdict(diff)}", "", f"Compared with {diff.base_label}; MB = 1,000,000 bytes.", ""]
    lines += _markdown_table(LAYER_HEADER, layers)
    if functions:
        lines += ["", f"**Functions** (limit {diff.functions[0].limit_bytes:,} bytes)", ""]
        lines += _markdown_table(FUNCTION_HEADER, functions)
    lines += ["", f"<details><summary>{len(packages)} package(s) changed</summary>", ""]
    lines += _markdown_table(PACKAGE_HEADER, packages) if packages else ["None."]
    lines += ["", "</details>"]
    lines += [f"- build failure: {failure}" for failure in diff.failures]
    return "\n".join(lines) + "\n"


def render(diff: SizeDiff, fmt: str) -> str:
    return {"table": to_table, "json": to_json, "markdown": to_markdown}[fmt](diff)
