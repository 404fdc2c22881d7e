"""The picture: one self-contained HTML page (inline SVG and CSS, no script, nothing fetched) with a
treemap of each layer by package, each function's layers and code stacked against Lambda's limit,
and a nested treemap of what is inside each package (subpackages, bundled libraries, data files).

Hovering a rectangle or bar shows its exact bytes (SVG <title>); rectangles large enough carry
their name and size as labels. Colours say how a package moved against the base.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from ..core.runtimes import LAMBDA_UNZIPPED_LIMIT, MB
from .contents import KIND_NAMES, function_stacks
from .diff import SizeDiff, verdict

WIDTH = 960
MAX_LAYER_HEIGHT = 420
MIN_LAYER_HEIGHT = 120
COLOURS = {"grew": "#e4572e", "shrank": "#4caf50", "new": "#f4a259", "same": "#5b8db8"}


@dataclass(frozen=True)
class Rect:
    label: str
    value: int
    x: float
    y: float
    w: float
    h: float


def _worst(row: list[float], side: float) -> float:
    """The worst aspect ratio of a row of areas laid along `side` (squarified treemap, Bruls et al.)."""
    total = sum(row)
    return max(max(side * side * area / (total * total), total * total / (side * side * area)) for area in row)


def squarify(items: list[tuple[str, int]], width: float, height: float) -> list[Rect]:
    """Rectangles tiling width x height, each with an area proportional to its value (largest first).
    Items of zero or negative size get no rectangle."""
    items = sorted(((label, value) for label, value in items if value > 0), key=lambda item: -item[1])
    total = sum(value for _, value in items)
    if not items or width <= 0 or height <= 0:
        return []
    scale = width * height / total
    rects: list[Rect] = []
    x, y, w, h = 0.0, 0.0, float(width), float(height)
    rest = items
    while rest:
        side = min(w, h)
        count = 1
        while count < len(rest) and _worst([v * scale for _, v in rest[: count + 1]], side) <= _worst(
            [v * scale for _, v in rest[:count]], side
        ):
            count += 1
        row, rest = rest[:count], rest[count:]
        row_area = sum(value for _, value in row) * scale
        if w >= h:  # a column on the left
            column = row_area / h
            offset = y
            for label, value in row:
                cell = value * scale / column
                rects.append(Rect(label, value, x, offset, column, cell))
                offset += cell
            x, w = x + column, w - column
        else:  # a row along the top
            band = row_area / w
            offset = x
            for label, value in row:
                cell = value * scale / band
                rects.append(Rect(label, value, offset, y, cell, band))
                offset += cell
            y, h = y + band, h - band
    return rects


def _movement(before: int | None, after: int) -> str:
    if before is None or before == 0:
        return "new"
    return "grew" if after > before else "shrank" if after < before else "same"


def _layer_svg(layer: dict[str, Any], before: dict[str, int] | None, height: int) -> str:
    versions = layer.get("packages", {})
    parts = [f'<svg class="treemap" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">']
    for rect in squarify(list(layer.get("package_bytes", {}).items()), WIDTH, height):
        old = None if before is None else before.get(rect.label, 0)
        movement = _movement(old, rect.value)
        change = "" if old is None else f", {(rect.value - old) / MB:+,.2f} MB vs base"
        version = f" {versions[rect.label]}" if rect.label in versions else ""
        name = html.escape(rect.label)
        parts.append(
            f'<g class="package" data-package="{name}"><title>{name}{html.escape(version)}: '
            f"{rect.value:,} bytes ({rect.value / MB:,.2f} MB{change})</title>"
            f'<rect x="{rect.x:.1f}" y="{rect.y:.1f}" width="{rect.w:.1f}" height="{rect.h:.1f}" '
            f'fill="{COLOURS[movement]}" stroke="#fff" stroke-width="2"/>'
        )
        if rect.w > 70 and rect.h > 36:
            parts.append(
                f'<text x="{rect.x + 6:.1f}" y="{rect.y + 18:.1f}" class="name">{name}</text>'
                f'<text x="{rect.x + 6:.1f}" y="{rect.y + 34:.1f}">{rect.value / MB:,.1f} MB</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


LAYER_COLOURS = ("#5b8db8", "#8e6bbf", "#3a9e8f", "#c9822b", "#b85b8d", "#6b8e23")
KIND_COLOURS = {
    "code": "#5b8db8",
    "extension": "#8e6bbf",
    "library": "#e4572e",
    "data": "#3a9e8f",
    "metadata": "#9e9e9e",
    "mixed": "#b0b7c3",
}


def _function_bars(functions: list[dict[str, Any]], layer_order: list[str]) -> str:
    """Each function: one bar of its layers (one segment each, in extraction order) and its code,
    Lambda's limit at the right edge, the kept headroom shaded."""
    row, label_width = 34, 230
    scale = (WIDTH - label_width - 10) / LAMBDA_UNZIPPED_LIMIT
    height = row * len(functions) + 24
    colour_of = {name: LAYER_COLOURS[i % len(LAYER_COLOURS)] for i, name in enumerate(layer_order)}
    parts = [f'<svg class="bars" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">']
    for index, fn in enumerate(functions):
        y = index * row
        limit = int(fn.get("limit_bytes") or LAMBDA_UNZIPPED_LIMIT)
        headroom = fn.get("headroom_bytes", 0)
        left = limit - fn["total_bytes"]
        over = "#c62828" if left < 0 else "#e4a11b" if left < headroom else None
        name = html.escape(fn["name"])
        listed = ", ".join(f"{s['name']} {s['bytes']:,}" for s in fn["layers"])
        parts.append(
            f'<g class="function" data-function="{name}"><title>{name}: {fn["total_bytes"]:,} of {limit:,} bytes '
            f"(layers: {html.escape(listed)}; code {fn['code_bytes']:,}; {left:,} left)</title>"
            f'<text x="0" y="{y + 20}" class="name">{name}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{limit * scale:.1f}" height="22" fill="#eee"/>'
            f'<rect x="{label_width + (limit - headroom) * scale:.1f}" y="{y + 4}" '
            f'width="{headroom * scale:.1f}" height="22" fill="#f6d6a8"/>'
        )
        x = float(label_width)
        for segment in fn["layers"]:
            width = min(segment["bytes"] * scale, label_width + limit * scale - x)
            fill = over or colour_of.get(segment["name"], LAYER_COLOURS[0])
            parts.append(
                f'<rect class="layer" data-layer="{html.escape(segment["name"])}" x="{x:.1f}" y="{y + 4}" '
                f'width="{max(width, 0):.1f}" height="22" fill="{fill}" stroke="#fff" stroke-width="1"/>'
            )
            x += segment["bytes"] * scale
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 4}" width="{fn["code_bytes"] * scale:.1f}" height="22" fill="#333"/>'
            f'<text x="{label_width + 6}" y="{y + 20}" class="bar">{fn["total_bytes"] / MB:,.1f} MB '
            f"({fn['total_bytes'] / limit:.0%}; {left / MB:,.1f} MB left)</text></g>"
        )
    limit_x = label_width + LAMBDA_UNZIPPED_LIMIT * scale
    parts.append(
        f'<line x1="{limit_x:.1f}" y1="0" x2="{limit_x:.1f}" y2="{height - 20}" stroke="#c62828" stroke-width="2"/>'
        f'<text x="{limit_x - 4:.1f}" y="{height - 6}" text-anchor="end" class="limit">'
        f"Lambda limit {LAMBDA_UNZIPPED_LIMIT:,} bytes</text></svg>"
    )
    return "".join(parts)


def _contents_svg(groups: list[dict[str, Any]], height: int) -> str:
    """A nested treemap: one frame per top-level package, its parts tiled inside, coloured by kind."""
    parts = [f'<svg class="contents" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">']
    by_name = {g["name"]: g for g in groups}
    for frame in squarify([(g["name"], g["bytes"]) for g in groups], WIDTH, height):
        group = by_name[frame.label]
        name = html.escape(frame.label)
        parts.append(
            f'<g class="group" data-package="{name}"><title>{name}: {frame.value:,} bytes</title>'
            f'<rect x="{frame.x:.1f}" y="{frame.y:.1f}" width="{frame.w:.1f}" height="{frame.h:.1f}" fill="#444"/>'
        )
        header = 16 if frame.h > 40 and frame.w > 60 else 0
        if header:
            parts.append(
                f'<text x="{frame.x + 4:.1f}" y="{frame.y + 12:.1f}" class="name">{name} '
                f"{frame.value / MB:,.1f} MB</text>"
            )
        inner = squarify(
            [(p["name"], p["bytes"]) for p in group["parts"]],
            max(frame.w - 4, 0),
            max(frame.h - header - 4, 0),
        )
        kinds = {p["name"]: p["kind"] for p in group["parts"]}
        for cell in inner:
            x, y = frame.x + 2 + cell.x, frame.y + header + 2 + cell.y
            label = html.escape(cell.label)
            parts.append(
                f'<g class="part" data-kind="{kinds[cell.label]}"><title>{label}: {cell.value:,} bytes '
                f"({cell.value / MB:,.2f} MB)</title>"
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell.w:.1f}" height="{cell.h:.1f}" '
                f'fill="{KIND_COLOURS[kinds[cell.label]]}" stroke="#fff" stroke-width="1"/>'
            )
            if cell.w > 90 and cell.h > 30:
                short = html.escape(cell.label.rsplit("/", 1)[-1] if kinds[cell.label] == "library" else cell.label)
                parts.append(
                    f'<text x="{x + 4:.1f}" y="{y + 14:.1f}">{short[: int(cell.w / 7)]}</text>'
                    f'<text x="{x + 4:.1f}" y="{y + 28:.1f}">{cell.value / MB:,.1f} MB</text>'
                )
            parts.append("</g>")
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def picture_data(
    current: dict[str, Any], contents: dict[str, list[dict[str, Any]]], stacks: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the page shows, as data (embedded in it, read back by its tests)."""
    return {
        "runtime": current.get("runtime"),
        "arch": current.get("arch"),
        "lambda_unzipped_limit": LAMBDA_UNZIPPED_LIMIT,
        "layers": {layer["name"]: contents.get(layer["name"], []) for layer in current.get("layers", [])},
        "functions": stacks,
    }


def embedded_data(page: str) -> dict[str, Any]:
    """The data a page embeds (picture_data's), read back."""
    start = page.index(f'<pre id="{DATA_ID}" hidden>') + len(f'<pre id="{DATA_ID}" hidden>')
    data: dict[str, Any] = json.loads(html.unescape(page[start : page.index("</pre>", start)]))
    return data


DATA_ID = "size-data"


STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 22px 0 6px; }
.verdict { font-weight: bold; padding: 6px 10px; background: #f3f3f3; display: inline-block; }
svg text { font: 12px system-ui, sans-serif; fill: #fff; pointer-events: none; }
svg text.name { font-weight: bold; }
.bars text { fill: #222; } .bars text.bar { fill: #fff; } .bars text.limit { fill: #c62828; }
.contents text { font-size: 11px; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 6px; color: #fff; }
"""


def html_page(
    current: dict[str, Any],
    base: dict[str, Any] | None,
    diff: SizeDiff,
    contents: dict[str, list[dict[str, Any]]] | None = None,
    layers_of: dict[str, list[str]] | None = None,
) -> str:
    """The page for `current` (a build report), coloured against `base` (None: all new). `contents`:
    each layer's packages split into parts (contents.py, from the built zips); `layers_of`: each
    function's layers in the template's order (its bar gets one segment per layer)."""
    old_layers = {layer["name"]: layer.get("package_bytes", {}) for layer in (base or {}).get("layers", [])}
    layers = current.get("layers", [])
    largest = max((layer["unzipped_bytes"] for layer in layers), default=1) or 1
    sizes = {layer["name"]: int(layer["unzipped_bytes"]) for layer in layers}
    stacks = function_stacks(current.get("functions") or [], layers_of or {}, sizes)
    data = picture_data(current, contents or {}, stacks)
    body = [
        f"<h1>Layer sizes: {html.escape(str(current.get('runtime')))}, {html.escape(str(current.get('arch')))}</h1>",
        f'<p class="verdict">{html.escape(verdict(diff))}</p>',
        f"<p>Compared with {html.escape(diff.base_label)}. Area is unzipped bytes; hover for exact sizes.</p>",
        '<p class="legend">'
        + "".join(f'<span style="background:{colour}">{html.escape(key)}</span>' for key, colour in COLOURS.items())
        + "</p>",
    ]
    for layer in layers:
        height = max(MIN_LAYER_HEIGHT, round(MAX_LAYER_HEIGHT * layer["unzipped_bytes"] / largest))
        budget = f" of a {layer['budget_bytes'] / MB:,.0f} MB budget" if layer.get("budget_bytes") else ""
        body.append(
            f"<h2>{html.escape(layer['name'])}: {layer['unzipped_bytes'] / MB:,.2f} MB unzipped{budget}, "
            f"{layer.get('zipped_bytes', 0) / MB:,.2f} MB zipped</h2>"
        )
        body.append(_layer_svg(layer, old_layers.get(layer["name"]) if base is not None else None, height))
    if stacks:
        body.append(
            f"<h2>Functions against Lambda's {LAMBDA_UNZIPPED_LIMIT:,}-byte limit (each layer, then the code)</h2>"
        )
        body.append(
            '<p class="legend">'
            + "".join(
                f'<span style="background:{LAYER_COLOURS[i % len(LAYER_COLOURS)]}">{html.escape(name)}</span>'
                for i, name in enumerate(sizes)
            )
            + '<span style="background:#333">function code</span></p>'
        )
        body.append(_function_bars(stacks, list(sizes)))
    if any(data["layers"].values()):
        body.append("<h2>Inside each layer: packages, their subpackages, bundled libraries and data files</h2>")
        body.append(
            '<p class="legend">'
            + "".join(
                f'<span style="background:{colour}">{html.escape(KIND_NAMES.get(kind, "smaller parts"))}</span>'
                for kind, colour in KIND_COLOURS.items()
            )
            + "</p>"
        )
        for layer in layers:
            groups = data["layers"][layer["name"]]
            if groups:
                height = max(MIN_LAYER_HEIGHT * 2, round(MAX_LAYER_HEIGHT * 1.5 * layer["unzipped_bytes"] / largest))
                body.append(f"<h2>{html.escape(layer['name'])}, inside</h2>")
                body.append(_contents_svg(groups, height))
    body.append(f'<pre id="{DATA_ID}" hidden>{html.escape(json.dumps(data, sort_keys=True))}</pre>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Layer size report</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
