"""The per-layer trace manifest, layers/<layer>/trace.txt: its rendering and its parser.

One text file per layer, reviewed like code, deterministic (sorted; no dates, absolute paths or
timings), so a change in what the functions load shows up as a diff of a few lines:

    # Trace of layer <layer> (<runtime>, <arch>): what the traced runs loaded from this layer.
    # Regenerate with `inv trace-layers`; review the diff like code (docs/layer-contract.md).
    # Runs: function DataValidationFunction: sample batch, bad batch
    module pandas.io.parsers
    file sklearn/utils/_repr_html/estimator.css
    library numpy.libs/libscipy_openblas64_-4b78795a.so  needs: libc.so.6, libm.so.6

Paths are relative to the layer's python/ folder. Lines starting with `#` and blank lines are
comments; `read_trace` is what pruning reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import TraceFailed

MANIFEST_NAME = "trace.txt"
REGENERATE = "inv trace-layers"
NEEDS = "  needs:"


@dataclass(frozen=True)
class Trace:
    """What the traced runs loaded from one layer."""

    layer: str
    runtime: str
    arch: str
    runs: frozenset[str] = frozenset()  # each traced run that had this layer, e.g. "smoke test core-data-science"
    modules: frozenset[str] = frozenset()  # dotted module names, packages and extension modules included
    files: frozenset[str] = frozenset()  # data files opened, relative to python/
    libraries: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # .so relative to python/ -> DT_NEEDED


def header(layer: str, runtime: str, arch: str) -> str:
    return f"# Trace of layer {layer} ({runtime}, {arch}): what the traced runs loaded from this layer."


def render_trace(trace: Trace) -> str:
    """The manifest's text: header, runs, then modules, files and libraries, each sorted."""
    lines = [
        header(trace.layer, trace.runtime, trace.arch),
        f"# Regenerate with `{REGENERATE}`; review the diff like code (docs/layer-contract.md).",
        *(f"# Runs: {run}" for run in sorted(trace.runs)),
        *(f"module {name}" for name in sorted(trace.modules)),
        *(f"file {path}" for path in sorted(trace.files)),
        *(f"library {path}{NEEDS} {', '.join(trace.libraries[path])}".rstrip() for path in sorted(trace.libraries)),
    ]
    return "\n".join(lines) + "\n"


def parse_trace(text: str, source: str = MANIFEST_NAME) -> Trace:
    """The manifest back as a Trace; a line it cannot read names the file, the line and the fix."""
    layer = runtime = arch = ""
    runs: list[str] = []
    modules: set[str] = set()
    files: set[str] = set()
    libraries: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        kind, _, value = line.partition(" ")
        if line.startswith("# Trace of layer ") and not layer:
            layer, _, rest = line.removeprefix("# Trace of layer ").partition(" (")
            runtime, _, rest = rest.partition(", ")
            arch = rest.partition(")")[0]
        elif line.startswith("# Runs: "):
            runs.append(line.removeprefix("# Runs: "))
        elif not line.strip() or line.startswith("#"):
            continue
        elif kind == "module" and all(part.isidentifier() for part in value.split(".")):
            modules.add(value)
        elif kind == "file" and value:
            files.add(value)
        elif kind == "library" and NEEDS in value:
            path, _, needs = value.partition(NEEDS)
            libraries[path] = tuple(n.strip() for n in needs.split(",") if n.strip())
        else:
            raise TraceFailed(
                f"{source}, line {number}: cannot read {line!r}; expected `module <name>`, `file <path>` or "
                f"`library <path>{NEEDS} <soname>, ...`.\n  Fix: regenerate it with `{REGENERATE}`."
            )
    return Trace(layer, runtime, arch, frozenset(runs), frozenset(modules), frozenset(files), libraries)


def read_trace(path: Path) -> Trace:
    """Read layers/<layer>/trace.txt (for pruning); missing or unreadable: TraceFailed naming it."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFailed(
            f"{path} cannot be read ({exc}).\n  Fix: `{REGENERATE}` writes it from the built layers."
        ) from None
    return parse_trace(text, str(path))


def changed_lines(committed: str | None, fresh: str) -> list[str]:
    """Pure: the lines a regeneration would remove (-) and add (+), in file order."""
    old = (committed or "").splitlines()
    new = fresh.splitlines()
    old_set, new_set = set(old), set(new)
    return [f"- {line}" for line in old if line not in new_set] + [f"+ {line}" for line in new if line not in old_set]
