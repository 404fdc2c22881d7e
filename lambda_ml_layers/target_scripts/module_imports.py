"""Every module each source file may import, anywhere in it (lazy imports inside functions too).

argv: site (a python/ folder), files (JSON list of paths under it), output file.
Writes {path: [[module, line], ...]}. Parsed here, in the target interpreter, because the
libraries use its syntax (scipy's `type X = ...` needs 3.12). Relative imports are resolved
against the file's package; `from a import b` gives a and a.b (b may be a submodule).
"""

import ast
import json
import sys
from pathlib import Path


def package_parts(path: str) -> list[str]:
    parts = path[: -len(".py")].split("/")
    return parts[:-1]  # a module's package; for pkg/__init__.py that is pkg itself


def imports_of(source: str, path: str) -> list[list[object]]:
    found: list[list[object]] = []
    package = package_parts(path)
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Import):
            found += [[alias.name, node.lineno] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if module:
                found.append([module, node.lineno])
            found += [[f"{module}.{a.name}".lstrip("."), node.lineno] for a in node.names if a.name != "*"]
    return found


def main() -> None:
    site, files, out = Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    result = {}
    for path in files:
        try:
            source = (site / path).read_text(encoding="utf-8")
            result[path] = imports_of(source, path)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            result[path] = []  # not importable as written either: the verify step reports such a module
    Path(out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
