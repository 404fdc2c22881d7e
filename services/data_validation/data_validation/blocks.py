"""An upload as a sequence of bounded blocks of rows, and the batch-wide duplicate check over them.

validate.py checks one block at a time, so memory does not grow with the upload: what does grow
is only DuplicateKeys, 8 bytes per row (a 64-bit hash of the key; 16 bytes per row for a moment
while the hashes are compared at the end), 8 MB per million rows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .inputs import canonical_header
from .runtime import BadInput

# Rows checked at once: large enough for pandas to be quick, small enough to stay a few tens of MB.
BLOCK_ROWS = 50_000


@dataclass(frozen=True)
class Table:
    """The upload's header (canonical names), the renames made, and its rows block by block."""

    names: list[str]
    renames: dict[str, str]
    blocks: Iterator[pd.DataFrame]
    header: list[str]  # as received: tells a file split by another delimiter


def read_table(lines: Iterable[str], block_rows: int = BLOCK_ROWS) -> Table:
    """CSV lines (with their endings) -> text columns, `block_rows` records at a time. Every record
    must have the header's field count (pandas would silently pad or shift a ragged row), blank
    lines are skipped, and an empty field is missing (NaN), as pandas.read_csv reads them."""
    reader = csv.reader(iter(lines), strict=True)
    header = _next_filled(reader)
    first = _next_filled(reader) if header is not None else None
    if header is None or (not "".join(header).strip() and first is None):
        raise BadInput("the batch is an empty file")
    names, renames = canonical_header(header)
    return Table(names, renames, _blocks(reader, first, names, block_rows), header)


def _next_filled(reader: Any) -> list[str] | None:
    """The next record that is not a blank line."""
    record = _next_record(reader)
    while record == []:
        record = _next_record(reader)
    return record


def _next_record(reader: Any) -> list[str] | None:
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise BadInput(f"malformed CSV: line {reader.line_num}: {exc}") from None


def _blocks(reader: Any, first: list[str] | None, names: list[str], size: int) -> Iterator[pd.DataFrame]:
    records: list[list[str]] = []
    record = first
    while record is not None:
        if record:
            if len(record) != len(names):
                raise BadInput(
                    f"malformed CSV: line {reader.line_num} has {len(record)} fields, the header has {len(names)}"
                )
            records.append(record)
            if len(records) == size:
                yield _frame(records, names)
                records = []
        record = _next_record(reader)
    if records:
        yield _frame(records, names)


def _frame(records: list[list[str]], names: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=names, dtype=object)
    return frame.mask(frame == "")


def key_hashes(frame: pd.DataFrame, key: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's key (pandas' fixed-key SipHash: the same in every process)."""
    return pd.util.hash_pandas_object(frame[key], index=False).to_numpy()


class DuplicateKeys:
    """Which key hashes occur in more than one block (duplicates inside one block are found exactly
    by the block's own check). A hash is only a candidate: validate.py confirms each by the key's
    exact values in a second pass over the upload, which holds the candidates' rows back."""

    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []

    def add(self, hashes: np.ndarray) -> None:
        self._hashes.append(np.unique(hashes))  # one entry per key and block

    def candidates(self) -> frozenset[int]:
        if len(self._hashes) < 2:
            return frozenset()
        every = np.concatenate(self._hashes)
        self._hashes = []
        every.sort()
        repeated = every[1:][every[1:] == every[:-1]]
        return frozenset(int(h) for h in np.unique(repeated))
