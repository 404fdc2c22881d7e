"""schema.toml read and checked into a Schema: the columns, their types and limits, the key.

validate.py applies it to an upload; rules.py holds the per-column rules."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schema.toml")
DTYPES = {"string", "float", "int", "datetime"}
# Identifier formats are the data owner's, not the schema's: a column marked `id = true` takes
# its pattern from the environment (<COLUMN>_PATTERN, e.g. CARD_ID_PATTERN), else this one:
# letters and digits first, then those and _ . : / # @ + -, at most 128 characters (no spaces,
# commas or quotes, which would make ids ambiguous in CSV and logs).
DEFAULT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/#@+-]{0,127}$"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    required: bool = True
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[Any, ...] | None = None
    pattern: str | None = None
    id: bool = False  # an identifier: the pattern comes from configuration (see DEFAULT_ID_PATTERN)


@dataclass(frozen=True)
class Schema:
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    max_invalid_fraction: float

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def id_pattern(column: str, environ: Mapping[str, str]) -> str:
    variable = f"{column.upper()}_PATTERN"
    pattern = environ.get(variable) or DEFAULT_ID_PATTERN
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{variable}={pattern!r} is not a regular expression ({exc}): fix the environment") from None
    return pattern


def load_schema(path: Path = SCHEMA_PATH, environ: Mapping[str, str] = os.environ) -> Schema:
    """Read and check the schema itself, so a typo in it fails at init, not mid-batch."""
    raw = tomllib.loads(path.read_text())
    problems = []
    columns = []
    known = set(Column.__dataclass_fields__)
    for spec in raw.get("columns", []):
        unknown = set(spec) - known
        if unknown:
            problems.append(f"column {spec.get('name')!r}: unknown keys {sorted(unknown)}")
            continue
        if spec.get("dtype") not in DTYPES:
            problems.append(f"column {spec.get('name')!r}: dtype must be one of {sorted(DTYPES)}")
            continue
        if "allowed" in spec:
            spec = {**spec, "allowed": tuple(spec["allowed"])}
        if spec.get("id"):
            spec = {**spec, "pattern": id_pattern(spec["name"], environ)}
        columns.append(Column(**spec))
    names = [c.name for c in columns]
    problems += [f"key column {k!r} is not a column" for k in raw.get("key", []) if k not in names]
    if problems:
        raise ValueError(f"{path} is invalid: " + "; ".join(problems))
    return Schema(tuple(columns), tuple(raw.get("key", [])), float(raw["max_invalid_fraction"]))
