"""A function's CodeUri folder and the module its Handler names must exist before anything is built.

Pure apart from looking at the files. Why: without this a missing folder is first reported as a
missing requirements.in, and following that advice builds and deploys a function with no code.
"""

from __future__ import annotations

from pathlib import Path


def handler_module_files(handler: str) -> tuple[str, str] | None:
    """The two files `module.path.function` may live in (module or package), or None if malformed."""
    module, _, function = handler.rpartition(".")
    parts = module.split(".")
    if not function or not module or not all(part.isidentifier() for part in [*parts, function]):
        return None
    base = "/".join(parts)
    return f"{base}.py", f"{base}/__init__.py"


def function_code_problems(function: str, code_dir: Path, handler: str, template: Path) -> list[str]:
    """What is missing for the function's code to be packaged and its handler imported."""
    if not code_dir.is_dir():
        return [
            f"{template}: function {function} has CodeUri {code_dir}, which is not a folder. "
            f"Fix CodeUri to point at the function's folder (services/<function>/)."
        ]
    candidates = handler_module_files(handler)
    if candidates is None:
        return [
            f"{template}: function {function} has Handler {handler!r}; Lambda needs "
            f"`module.function` (e.g. data_validation.handler.lambda_handler)."
        ]
    if not any((code_dir / candidate).is_file() for candidate in candidates):
        return [
            f"{template}: function {function}'s Handler {handler!r} needs {code_dir / candidates[0]} "
            f"(or {candidates[1]}), which does not exist. Fix Handler or add the module."
        ]
    return []
