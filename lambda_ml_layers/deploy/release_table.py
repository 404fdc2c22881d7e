"""`inv releases`: the history as a table a person reads."""

from __future__ import annotations

from .releases import Release


def release_table(history: list[Release]) -> str:
    header = ("release", "kind", "time (UTC)", "commit", "layers", "note")
    rows = []
    for release in history:
        commit = release.git_commit[:10] + ("+dirty" if release.git_dirty else "")
        layers = ", ".join(
            f"{folder}:{info['arn'].rsplit(':', 1)[-1]}" for folder, info in sorted(release.layers.items())
        )
        kind = f"{release.kind} of {release.restores}" if release.restores else release.kind
        rows.append((str(release.number), kind, release.time, commit, layers, release.note))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append(f"current: release {history[-1].number}")
    return "\n".join(lines)
