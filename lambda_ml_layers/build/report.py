"""The build report: a terminal table, and the JSON (schema-versioned) and Markdown texts that
artifacts.py publishes per target (BuildPaths.report / report_md)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ..core.notices import Notice
from ..core.runtimes import LAMBDA_UNZIPPED_LIMIT, MB
from .artifacts import LayerBuild
from .size_gates import FunctionTotal

SCHEMA_VERSION = 1


def _mb(size: int) -> str:
    return f"{size / MB:,.1f}"


def _removed_by_rule(layer: LayerBuild) -> dict[str, int]:
    removed: dict[str, int] = {}
    for step in layer.steps:
        if step["by_rule"]:
            for rule, counts in step["by_rule"].items():
                removed[rule] = counts["bytes"]
        elif step["bytes_removed"]:
            removed[step["step"]] = step["bytes_removed"]
    return removed


def report_data(
    layers: list[LayerBuild],
    totals: list[FunctionTotal],
    failures: list[str],
    notices: list[Notice],
    runtime: str,
    arch: str,
) -> dict[str, Any]:
    """The report as JSON data. `notices` are the build's own; each layer's warnings are added."""
    notices = [*notices, *all_warnings(layers)]
    return {
        "schema_version": SCHEMA_VERSION,
        "runtime": runtime,
        "arch": arch,
        "lambda_unzipped_limit": LAMBDA_UNZIPPED_LIMIT,
        "layers": [
            {
                "name": layer.name,
                "files": layer.files,
                "unzipped_bytes": layer.unzipped_bytes,
                "zipped_bytes": layer.zipped_bytes,
                "budget_bytes": layer.budget_bytes,
                "budget_used": round(layer.unzipped_bytes / layer.budget_bytes, 4),
                "target_bytes": layer.target_bytes,
                "over_target_bytes": max(0, layer.unzipped_bytes - layer.target_bytes) if layer.target_bytes else 0,
                "sha256": layer.sha256,
                "cache_hit": layer.cache_hit,
                "verified": layer.verified,
                "verification": layer.verification,  # the phrase the progress lines showed
                "warnings": [warning.message for warning in layer.warnings],
                "packages": layer.packages,
                "provided_by_base": layer.provided_by_base,
                "package_bytes": layer.package_bytes,
                "removed_bytes_by_rule": _removed_by_rule(layer),
                "steps": layer.steps,
            }
            for layer in layers
        ],
        "functions": [
            {
                "name": t.name,
                "code_bytes": t.code_bytes,
                "layer_bytes": t.layer_bytes,
                "total_bytes": t.total_bytes,
                "limit_bytes": t.limit_bytes,
                "headroom_bytes": t.headroom_bytes,
                "room_for_code_bytes": t.room_for_code,
            }
            for t in totals
        ],
        "failures": failures,
        "notices": [notice.to_dict() for notice in notices],
        "notes": [notice.text() for notice in notices],  # the same, as lines
    }


def all_warnings(layers: list[LayerBuild]) -> list[Notice]:
    return [warning for layer in layers for warning in layer.warnings]


def _top(package_bytes: dict[str, int], count: int = 3) -> str:
    largest = sorted(package_bytes.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{name} {_mb(size)}" for name, size in largest)


def _budget_cell(layer: LayerBuild) -> str:
    used = layer.unzipped_bytes / layer.budget_bytes
    cell = f"[{'red' if used > 1 else 'green'}]{used:.0%} of {_mb(layer.budget_bytes)}[/]"
    if layer.target_bytes and layer.unzipped_bytes > layer.target_bytes:
        gap = layer.unzipped_bytes - layer.target_bytes
        cell += f"\n[yellow]{_mb(gap)} over the {_mb(layer.target_bytes)} target[/]"
    return cell


def layer_table(layers: list[LayerBuild]) -> Table:
    table = Table(title="Layers (MB = 1,000,000 bytes)", title_justify="left")
    for column in ("layer", "files", "unzipped MB", "zipped MB", "budget used", "removed MB", "top packages (MB)"):
        table.add_column(column, justify="left" if column in ("layer", "budget used", "top packages (MB)") else "right")
    table.add_column("build")
    for layer in layers:
        table.add_row(
            layer.name,
            f"{layer.files:,}",
            _mb(layer.unzipped_bytes),
            _mb(layer.zipped_bytes),
            _budget_cell(layer),
            _mb(sum(_removed_by_rule(layer).values())),
            _top(layer.package_bytes),
            ("cached" if layer.cache_hit else f"{layer.seconds:.0f}s") + ("" if layer.verified else "\nnot verified"),
        )
    return table


def rules_table(layers: list[LayerBuild]) -> Table:
    """MB removed by each strip rule and step, per layer (bytecode: source removed less .pyc added)."""
    table = Table(title="Removed per rule (MB)", title_justify="left")
    table.add_column("rule / step")
    removed = {layer.name: _removed_by_rule(layer) for layer in layers}
    rules = list(dict.fromkeys(rule for per_layer in removed.values() for rule in per_layer))
    for layer in layers:
        table.add_column(layer.name, justify="right")
    for rule in rules:
        table.add_row(rule, *[_mb(removed[layer.name].get(rule, 0)) for layer in layers])
    return table


def function_table(totals: list[FunctionTotal]) -> Table:
    table = Table(title=f"Functions (limit {LAMBDA_UNZIPPED_LIMIT:,} bytes unzipped)", title_justify="left")
    for column in ("function", "code", "layers MB", "total MB", "of limit", "room for code"):
        table.add_column(column, justify="left" if column == "function" else "right")
    for total in totals:
        used = total.total_bytes / total.limit_bytes
        style = "red" if total.total_bytes > total.limit_bytes - total.headroom_bytes else "green"
        table.add_row(
            total.name,
            f"{total.code_bytes:,} B",
            _mb(total.layer_bytes),
            _mb(total.total_bytes),
            f"[{style}]{used:.0%}[/]",
            f"{total.room_for_code:,} B",
        )
    return table


def markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# Layer build report ({data['runtime']}, {data['arch']})",
        "",
        "| layer | files | unzipped MB | zipped MB | budget used | top packages |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for layer in data["layers"]:
        lines.append(
            f"| {layer['name']} | {layer['files']:,} | {_mb(layer['unzipped_bytes'])} | "
            f"{_mb(layer['zipped_bytes'])} | {layer['budget_used']:.0%} of {_mb(layer['budget_bytes'])} | "
            f"{_top(layer['package_bytes'])} |"
        )
    lines += ["", "## Bytes removed per rule", "", "| layer | rule | MB removed |", "| --- | --- | ---: |"]
    for layer in data["layers"]:
        for rule, size in layer["removed_bytes_by_rule"].items():
            lines.append(f"| {layer['name']} | {rule} | {_mb(size)} |")
    if data["functions"]:
        lines += [
            "",
            f"## Functions (limit {data['lambda_unzipped_limit']:,} bytes)",
            "",
            "| function | code bytes | layer bytes | total bytes | room for code |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for fn in data["functions"]:
            lines.append(
                f"| {fn['name']} | {fn['code_bytes']:,} | {fn['layer_bytes']:,} | "
                f"{fn['total_bytes']:,} | {fn['room_for_code_bytes']:,} |"
            )
    sections = {
        "Failures": data["failures"],
        "Warnings": [Notice.from_dict(n).text() for n in data["notices"] if n["kind"] == "warning"],
        "Notes": [Notice.from_dict(n).text() for n in data["notices"] if n["kind"] != "warning"],
    }
    for heading, items in sections.items():
        if items:
            lines += ["", f"## {heading}", "", *[f"- {item}" for item in items]]
    return "\n".join(lines) + "\n"


def report_texts(data: dict[str, Any]) -> tuple[str, str]:
    """The report as JSON and as Markdown."""
    return json.dumps(data, indent=2), markdown(data)


def print_report(
    console: Console, layers: list[LayerBuild], totals: list[FunctionTotal], notices: list[Notice]
) -> None:
    console.print(layer_table(layers))
    console.print(rules_table(layers))
    if totals:
        console.print(function_table(totals))
    for notice in [*notices, *all_warnings(layers)]:
        label = "[yellow]warning[/]" if notice.kind == "warning" else "note"
        console.print(f"{label}: ", end="", highlight=False)
        console.print(notice.text(), highlight=False, markup=False)
