"""The one TOML reader (layers/*.toml, infra/*.toml) and a writer for modified copies.

Every way a TOML file can be unreadable (missing, a byte order mark, not UTF-8, broken
syntax) becomes one ConfigError naming the file, the line and the fix, so callers never
see tomllib's or the file system's exceptions.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError

_BOM = b"\xef\xbb\xbf"


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file at `path` as a dict; any reason it cannot be read is one ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file is missing. Restore it (git checkout -- {path}) or create it.") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if data.startswith(_BOM):
        # Some editors on Windows add it; TOML forbids it and tomllib's own message ("Invalid
        # statement (at line 1, column 1)") does not say what is wrong.
        raise ConfigError(
            f"{path}:1: starts with a byte order mark (BOM), which TOML does not allow. "
            f"Save the file as UTF-8 without BOM."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}:{_line_of(data, exc.start)}: not UTF-8 text ({exc.reason}). Save the file as UTF-8."
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already names the line and column ("... (at line 3, column 11)").
        raise ConfigError(f"{path}: not valid TOML: {exc}. Fix the syntax and run again.") from None


def _toml_value(value: Any) -> str:
    """One value as TOML; tables are written inline, so any nesting fits on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        # A JSON string without \u escapes of non-ASCII is a valid TOML basic string.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return (
            "{ "
            + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)} = {_toml_value(v)}" for k, v in value.items())
            + " }"
        )
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) as TOML.")


def toml_text(data: dict[str, Any]) -> str:
    """`data` as TOML text that reads back to exactly `data` (checked, not assumed)."""
    text = "".join(
        f"{json.dumps(str(key), ensure_ascii=False)} = {_toml_value(value)}\n" for key, value in data.items()
    )
    if tomllib.loads(text) != data:
        raise ConfigError(f"writing TOML did not round-trip: {data!r}")
    return text


def write_toml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(toml_text(data), encoding="utf-8")
