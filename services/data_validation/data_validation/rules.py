"""The per-column rules of schema.toml applied to one block of rows: typed values and each row's
findings (validate.py runs them block by block over an upload)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from .inputs import canonical_name
from .schema import Column, Schema


def check_block(frame: pd.DataFrame, schema: Schema, normalized: Counter[str]) -> tuple[pd.DataFrame, pd.Series]:
    """One block's typed columns and each row's findings (the duplicate check within the block included)."""
    errors = pd.Series([[] for _ in range(len(frame))], index=frame.index, dtype=object)
    typed = pd.DataFrame(index=frame.index)
    for column in (c for c in schema.columns if c.name in frame.columns):
        values, changed = _normalize(frame[column.name], column)
        normalized[column.name] += changed
        typed[column.name] = _check_column(values, column, errors)
    flag_duplicates(frame, schema, errors)
    return typed, errors


def flag_duplicates(frame: pd.DataFrame, schema: Schema, errors: pd.Series) -> None:
    if not schema.key:
        return
    key = list(schema.key)
    finding = f"duplicate key {', '.join(schema.key)}"
    duplicated = frame.duplicated(subset=key, keep=False) & frame[key].notna().all(axis=1)
    for index in frame.index[duplicated]:
        if finding not in errors[index]:  # held rows were checked within their block already
            errors[index].append(finding)


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
