"""Exit codes live in errors.py only, and docs/troubleshooting.md lists exactly them."""

from __future__ import annotations

import ast
import inspect
import re

from lambda_ml_layers.core import errors
from tests.project_factory import REPO

ROW = re.compile(r"^\| (\d+) \| `(\w+)` \| [^|]+ \| [^|]+ \|$")


def error_classes() -> dict[str, int]:
    return {
        name: cls.exit_code
        for name, cls in vars(errors).items()
        if inspect.isclass(cls) and issubclass(cls, errors.LayerToolError)
    }


def documented() -> list[tuple[str, int]]:
    text = (REPO / "docs" / "troubleshooting.md").read_text()
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| code")]
    rows = [line for line in rows if not line.startswith("| ---")]
    parsed = []
    for line in rows:
        match = ROW.match(line)
        assert match, f"not a row of | code | `Class` | meaning | where to look |: {line}"
        parsed.append((match.group(2), int(match.group(1))))
    return parsed


def test_the_table_lists_exactly_the_classes_of_errors_py_with_their_codes() -> None:
    rows = documented()
    assert len(rows) == len(set(rows)), "a class is listed twice"
    assert dict(rows) == error_classes()


def test_every_exit_code_belongs_to_one_class() -> None:
    codes = list(error_classes().values())
    assert len(codes) == len(set(codes))


def test_no_error_class_is_defined_outside_errors_py() -> None:
    names = set(error_classes())
    elsewhere = []
    for path in sorted((REPO / "lambda_ml_layers").rglob("*.py")):
        if path.relative_to(REPO).as_posix() == "lambda_ml_layers/core/errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if bases & names:
                    elsewhere.append(f"{path.relative_to(REPO)}: {node.name}")
    assert elsewhere == []
