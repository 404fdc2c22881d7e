"""Compile a layer's modules to unchecked-hash .pyc without docstrings, asserts kept.

Run as a script by the *target* interpreter (bytecode must match its magic number), so it
uses only the standard library and never imports the engine:

    python -I docstring_free_compile.py SITE OPT_PATH sourceless|pyc

`-OO` (or `compile(..., optimize=2)`) drops docstrings but also every `assert`, which some
libraries rely on for argument checks; optimize=1 keeps docstrings. So the docstring
expressions are removed from the AST (exactly the statements `-OO` drops: the first
statement of a module, class or function when it is a string constant) and the tree is
compiled with optimize=0. Line numbers are untouched: tracebacks point at the same lines.

Prints one JSON line: {"compiled": [...], "failed": {rel: error}, "docstrings_removed": n}.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]
from pathlib import Path

_SCOPES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def drop_docstrings(tree: ast.Module) -> int:
    """Remove every docstring in place; a body left empty gets `pass` at the docstring's line."""
    removed = 0
    for node in ast.walk(tree):
        if isinstance(node, _SCOPES) and node.body and is_docstring(node.body[0]):
            first = node.body.pop(0)
            removed += 1
            if not node.body:
                node.body.append(ast.copy_location(ast.Pass(), first))
    return removed


def compile_file(source_path: Path, display_name: str, pyc_path: Path) -> int:
    """Write `pyc_path`, an unchecked-hash .pyc of `source_path`; return the docstrings removed."""
    source = source_path.read_bytes()
    tree = ast.parse(source, filename=display_name)
    removed = drop_docstrings(tree)
    code = compile(tree, display_name, "exec", dont_inherit=True, optimize=0)
    data = _code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False)
    pyc_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = pyc_path.with_name(pyc_path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, pyc_path)  # never a half-written .pyc
    return removed


def pyc_path_for(source_path: Path, policy: str) -> Path:
    """sourceless: beside the source (found once the .py is gone); pyc: __pycache__, as compileall."""
    if policy == "sourceless":
        return source_path.with_suffix(".pyc")
    return Path(importlib.util.cache_from_source(str(source_path)))


def main(site: Path, opt_path: str, policy: str) -> dict[str, object]:
    compiled: list[str] = []
    failed: dict[str, str] = {}
    removed = 0
    for source_path in sorted(site.rglob("*.py")):
        rel = source_path.relative_to(site).as_posix()
        try:
            removed += compile_file(source_path, f"{opt_path}/{rel}", pyc_path_for(source_path, policy))
            compiled.append(rel)
        except (SyntaxError, ValueError, UnicodeDecodeError) as exc:  # what compileall also skips
            failed[rel] = f"{type(exc).__name__}: {exc}"
    return {"compiled": compiled, "failed": failed, "docstrings_removed": removed}


if __name__ == "__main__":
    site_arg, opt_arg, policy_arg = sys.argv[1:4]
    print(json.dumps(main(Path(site_arg), opt_arg, policy_arg)))
