"""Check a CSV batch against schema.toml: valid rows, invalid rows and a report.

`scan` checks an upload block by block (blocks.py) and hands the rows to a sink, so the handler
streams uploads of any size in bounded memory; `validate` is the same over a batch in memory."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .blocks import BLOCK_ROWS, DuplicateKeys, key_hashes, read_table
from .inputs import delimiter_message, other_delimiter
from .rules import check_block, flag_duplicates
from .runtime import BadInput
from .schema import Schema

ERRORS_COLUMN = "_errors"


@dataclass
class Result:
    valid: pd.DataFrame
    invalid: pd.DataFrame  # the rows as received, plus ERRORS_COLUMN
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])


class Sink(Protocol):
    """Where checked rows go, block by block (in memory here, S3 chunks in split.py)."""

    def valid(self, rows: pd.DataFrame) -> None: ...  # typed columns

    def invalid(self, rows: pd.DataFrame) -> None: ...  # as received, plus ERRORS_COLUMN


@dataclass
class Scan:
    report: dict[str, Any]
    # Key hashes seen in more than one block: scan again with them `held` to confirm them exactly.
    candidates: frozenset[int]


@dataclass
class _Tally:
    rows: int = 0
    invalid: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    normalized: Counter[str] = field(default_factory=Counter)


def validate(body: bytes | str, schema: Schema, notes: tuple[str, ...] = (), block_rows: int = BLOCK_ROWS) -> Result:
    """A whole batch in memory (training, tests): the same checks the handler streams.
    `notes`: what was done to the upload before (decoding), repeated in the report."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadInput(f"the batch is not UTF-8 text (byte {exc.start}): malformed CSV") from None
    text = body.removeprefix("\ufeff")
    held: frozenset[int] = frozenset()
    while True:
        sink = _MemorySink()
        scanned = scan(io.StringIO(text, newline=""), schema, sink, notes, held, block_rows)
        if not scanned.candidates:
            return Result(sink.frame(sink.valid_rows), sink.frame(sink.invalid_rows), scanned.report)
        held = scanned.candidates


def scan(
    lines: Iterable[str],
    schema: Schema,
    sink: Sink,
    notes: tuple[str, ...] = (),
    held: frozenset[int] = frozenset(),
    block_rows: int = BLOCK_ROWS,
) -> Scan:
    """Check an upload block by block, sending each block's valid and invalid rows to `sink`, and
    return the report. A key repeated across blocks is only known at the end: the first scan
    returns such keys' hashes as `candidates`; the caller scans again with them `held`, and their
    rows are then held back and sent, exactly judged, after the last block (a handful of rows)."""
    table = read_table(lines, block_rows)
    missing = [c.name for c in schema.columns if c.required and c.name not in table.names]
    if missing:
        delimiter = other_delimiter(table.header, (c.name for c in schema.columns if c.required))
        if delimiter is not None:
            raise BadInput(delimiter_message(delimiter, table.header))
        raise BadInput(f"the batch lacks required column(s) {', '.join(missing)}; header is {table.names}")
    key = list(schema.key)
    tally, duplicates = _Tally(), DuplicateKeys()
    held_hashes = np.array(sorted(held), dtype=np.uint64)
    kept: list[tuple[pd.DataFrame, pd.DataFrame, pd.Series]] = []
    for frame in table.blocks:
        frame.index = pd.RangeIndex(tally.rows, tally.rows + len(frame))  # row numbers in the upload
        tally.rows += len(frame)
        typed, errors = check_block(frame, schema, tally.normalized)
        hold = pd.Series(False, index=frame.index)
        if key:
            keyed = frame[key].notna().all(axis=1)
            hashes = key_hashes(frame[keyed], key)
            duplicates.add(hashes)
            hold[keyed] = np.isin(hashes, held_hashes)
        if hold.any():
            kept.append((frame[hold], typed[hold], errors[hold]))
        _send(frame[~hold], typed[~hold], errors[~hold], sink, tally)
    if tally.rows == 0:
        raise BadInput("the batch has a header but no rows")
    if kept:
        raw, typed, errors = (pd.concat(part) for part in zip(*kept, strict=True))
        flag_duplicates(raw, schema, errors)
        _send(raw, typed, errors, sink, tally)
    report = _report(tally, schema, notes, table.renames, [c for c in table.names if c not in schema.names])
    return Scan(report, frozenset() if held else duplicates.candidates())


def _send(raw: pd.DataFrame, typed: pd.DataFrame, errors: pd.Series, sink: Sink, tally: _Tally) -> None:
    bad = errors.map(bool).astype(bool)
    invalid = raw[bad].copy()
    invalid[ERRORS_COLUMN] = errors[bad].map("; ".join)
    for findings in errors[bad]:
        tally.problems.update(findings)
    tally.invalid += int(bad.sum())
    sink.invalid(invalid)
    sink.valid(typed[~bad])


def _report(
    tally: _Tally, schema: Schema, notes: tuple[str, ...], renames: dict[str, str], extra: list[str]
) -> dict[str, Any]:
    fraction = tally.invalid / tally.rows
    valid = tally.rows - tally.invalid
    passed = fraction <= schema.max_invalid_fraction and valid > 0
    report = {
        "passed": passed,
        "rows": tally.rows,
        "valid_rows": valid,
        "invalid_rows": tally.invalid,
        "invalid_fraction": round(fraction, 4),
        "max_invalid_fraction": schema.max_invalid_fraction,
        "ignored_columns": extra,
        "problems_by_rule": dict(sorted(tally.problems.items())),
        "normalized": {
            "input": list(notes),
            "header": renames,
            "values": {c.name: tally.normalized[c.name] for c in schema.columns if tally.normalized[c.name]},
        },
    }
    if not passed:
        report["reason"] = (
            f"{tally.invalid} of {tally.rows} rows invalid ({fraction:.1%} > allowed {schema.max_invalid_fraction:.0%})"
        )
    return report


class _MemorySink:
    def __init__(self) -> None:
        self.valid_rows: list[pd.DataFrame] = []
        self.invalid_rows: list[pd.DataFrame] = []

    def valid(self, rows: pd.DataFrame) -> None:
        self.valid_rows.append(rows)

    def invalid(self, rows: pd.DataFrame) -> None:
        self.invalid_rows.append(rows)

    @staticmethod
    def frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(parts).reset_index(drop=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
