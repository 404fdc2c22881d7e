"""Check a CSV batch against schema.toml: a pure function from bytes to valid rows, invalid rows and a report."""

from __future__ import annotations

import csv
import io
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .inputs import canonical_header, canonical_name
from .runtime import BadInput

SCHEMA_PATH = Path(__file__).with_name("schema.toml")
DTYPES = {"string", "float", "int", "datetime"}
ERRORS_COLUMN = "_errors"
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


@dataclass
class Result:
    valid: pd.DataFrame
    invalid: pd.DataFrame  # the rows as received, plus ERRORS_COLUMN
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])


def read_batch(body: bytes | str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Parse a CSV as text columns, with canonical header names, and the header renames made;
    a file that is not a CSV table is BadInput. Bytes must be UTF-8 (handler.py decodes other
    encodings it accepts first)."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadInput(f"the batch is not UTF-8 text (byte {exc.start}): malformed CSV") from None
    text = body.removeprefix("\ufeff")
    if not text.strip():
        raise BadInput("the batch is an empty file")
    header = _check_table_shape(text)
    names, renames = canonical_header(header)
    # Everything as text first: type errors are then per-cell findings, not a crash.
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""], index_col=False)
    frame.columns = names
    return frame, renames


def _check_table_shape(text: str) -> list[str]:
    """Every record has the header's field count; pandas alone would silently turn surplus
    fields into an index or pad short rows, so the shape is checked with the csv module."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        for record in reader:
            if record and len(record) != len(header):
                raise BadInput(
                    f"malformed CSV: line {reader.line_num} has {len(record)} fields, the header has {len(header)}"
                )
    except csv.Error as exc:
        raise BadInput(f"malformed CSV: line {reader.line_num}: {exc}") from None
    return header


def validate(body: bytes | str, schema: Schema, notes: tuple[str, ...] = ()) -> Result:
    """`notes`: what was done to the upload before (decoding), repeated in the report."""
    frame, renames = read_batch(body)
    missing = [c.name for c in schema.columns if c.required and c.name not in frame.columns]
    if missing:
        raise BadInput(f"the batch lacks required column(s) {', '.join(missing)}; header is {list(frame.columns)}")
    if frame.empty:
        raise BadInput("the batch has a header but no rows")

    errors = pd.Series([[] for _ in range(len(frame))], index=frame.index, dtype=object)
    typed = pd.DataFrame(index=frame.index)
    present = [c for c in schema.columns if c.name in frame.columns]
    normalized_values: dict[str, int] = {}
    for column in present:
        values, changed = _normalize(frame[column.name], column)
        if changed:
            normalized_values[column.name] = changed
        typed[column.name] = _check_column(values, column, errors)
    if schema.key:
        duplicated = frame.duplicated(subset=list(schema.key), keep=False) & frame[list(schema.key)].notna().all(axis=1)
        for index in frame.index[duplicated]:
            errors[index].append(f"duplicate key {', '.join(schema.key)}")

    bad = errors.map(bool)
    invalid = frame[bad].copy()
    invalid[ERRORS_COLUMN] = errors[bad].map("; ".join)
    valid = typed[~bad].reset_index(drop=True)
    extra = [c for c in frame.columns if c not in schema.names]
    fraction = float(bad.mean())
    passed = fraction <= schema.max_invalid_fraction and len(valid) > 0
    report = {
        "passed": passed,
        "rows": len(frame),
        "valid_rows": len(valid),
        "invalid_rows": int(bad.sum()),
        "invalid_fraction": round(fraction, 4),
        "max_invalid_fraction": schema.max_invalid_fraction,
        "ignored_columns": extra,
        "problems_by_rule": _count_rules(errors[bad]),
        "normalized": {"input": list(notes), "header": renames, "values": normalized_values},
    }
    if not passed:
        report["reason"] = (
            f"{report['invalid_rows']} of {len(frame)} rows invalid "
            f"({fraction:.1%} > allowed {schema.max_invalid_fraction:.0%})"
        )
    return Result(valid=valid, invalid=invalid, report=report)


def _normalize(values: pd.Series, column: Column) -> tuple[pd.Series, int]:
    """Accepted spellings -> the schema's: ' Grocery ' and 'Online Retail' for an allowed
    'grocery' / 'online_retail', ids with surrounding spaces. Returns the values and how many
    cells changed (for the report); anything else is left for the rules to judge."""
    if column.dtype != "string" or (column.allowed is None and not column.id):
        return values, 0
    present = values.notna()
    if column.allowed is not None:
        allowed = set(column.allowed)
        canonical = values[present].map(canonical_name)
        fixed = canonical.where(canonical.isin(allowed), values[present])
    else:
        fixed = values[present].str.strip()
    changed = int((fixed != values[present]).sum())
    return (values.where(~present, fixed) if changed else values), changed


def _check_column(values: pd.Series, column: Column, errors: pd.Series) -> pd.Series:
    """The column converted to its dtype; each bad cell adds a finding to its row's errors."""

    def flag(mask: pd.Series, what: str) -> None:
        for index in values.index[mask.fillna(False).astype(bool)]:
            errors[index].append(f"{column.name}: {what}")

    null = values.isna()
    if not column.nullable:
        flag(null, "missing value")
    if column.dtype == "string":
        converted = values.astype(object)
    elif column.dtype == "datetime":
        converted = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    else:
        converted = pd.to_numeric(values, errors="coerce")
    flag(converted.isna() & ~null, f"not a {column.dtype}")
    if column.dtype == "int":
        fractional = converted.notna() & (converted != np.floor(converted.fillna(0)))
        flag(fractional, "not a whole number")
    if column.min is not None:
        flag(converted < column.min, f"below minimum {column.min}")
    if column.max is not None:
        flag(converted > column.max, f"above maximum {column.max}")
    if column.allowed is not None:
        flag(converted.notna() & ~converted.isin(list(column.allowed)), "not an allowed value")
    if column.pattern is not None:
        flag(converted.notna() & ~values.fillna("").str.fullmatch(column.pattern), "does not match pattern")
    if column.dtype == "int":
        # Flagged fractions are blanked so the column can hold whole numbers only.
        return converted.where(~fractional).astype("Int64")
    return converted


def _count_rules(errors: pd.Series) -> dict[str, int]:
    counts: dict[str, int] = {}
    for findings in errors:
        for finding in findings:
            counts[finding] = counts.get(finding, 0) + 1
    return dict(sorted(counts.items()))
