"""Read `layers/<layer>/trace.txt`, the reviewed manifest of what a layer's users loaded.

Format (fixed with `inv trace-layers`): `# ...` comments, then one entry a line:
`module <dotted.name>`, `file <path under python/>`, `library <path under python/>  needs: a.so, b.so`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class Trace:
    modules: frozenset[str]
    files: frozenset[str]
    libraries: dict[str, tuple[str, ...]]  # path under python/ -> the sonames it needs


def parse_trace(text: str, source: str) -> Trace:
    """Pure: the manifest's entries; an unreadable line is a ConfigError naming file and line."""
    modules: set[str] = set()
    files: set[str] = set()
    libraries: dict[str, tuple[str, ...]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, rest = line.partition(" ")
        rest = rest.strip()
        if kind == "module" and rest and all(part.isidentifier() for part in rest.split(".")):
            modules.add(rest)
        elif kind == "file" and rest:
            files.add(rest)
        elif kind == "library" and rest:
            path, _, needs = rest.partition("needs:")
            libraries[path.strip()] = tuple(n.strip() for n in needs.split(",") if n.strip())
        else:
            raise ConfigError(
                f"{source}:{number}: {raw!r} is not a trace entry (module <name>, file <path>, or "
                f"library <path>  needs: <soname>, ...). Fix: regenerate it with `inv trace-layers`."
            )
    return Trace(frozenset(modules), frozenset(files), libraries)


def read_trace(path: Path) -> Trace:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}). Fix: regenerate it with `inv trace-layers`.") from None
    return parse_trace(text, str(path))
