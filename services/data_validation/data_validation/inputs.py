"""What real uploads look like, turned into the one form validate.py checks.

Each rule here either accepts an input and says how it was normalized (a note that goes
into the validation report) or refuses it with BadInput naming the fix. docs/pipeline.md
("Real-world inputs") lists every case and why it is accepted or refused.
"""

from __future__ import annotations

import os
import re
import unicodedata
import zlib
from dataclasses import dataclass

from .runtime import INCOMING_PREFIX, BadEvent, BadInput, checked_batch_id

# Upload names, matched case-insensitively (Windows and Excel write ".CSV").
CSV_SUFFIX = ".csv"
GZIP_SUFFIX = ".csv.gz"
# One invocation holds the whole batch in memory: DataValidation (MemorySize 1024) peaked at
# 945 MB for 91 MB of CSV (issue 10), so a batch larger than this is refused with a report
# instead of running out of memory with none. Configurable per stage (MAX_BATCH_BYTES).
DEFAULT_MAX_BATCH_BYTES = 80_000_000
# Excel's "CSV" export on Windows writes the ANSI code page, almost always Windows-1252.
FALLBACK_ENCODING = "cp1252"


@dataclass(frozen=True)
class Upload:
    """An accepted incoming/ key: the batch it names and how its bytes are packed."""

    key: str
    batch_id: str
    compressed: bool


def max_batch_bytes() -> int:
    raw = os.environ.get("MAX_BATCH_BYTES", "")
    if not raw:
        return DEFAULT_MAX_BATCH_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise BadInput(f"MAX_BATCH_BYTES must be a positive whole number of bytes, got {raw!r}: fix the environment")
    return int(raw)


def parse_key(key: str) -> Upload:
    """incoming/<batch_id>.csv or .csv.gz (any case) -> Upload; other names are refused.

    Not under incoming/ is not an upload at all (BadEvent: the state machine never starts for
    it); under incoming/ with an unusable name is a refused upload (BadInput: it gets a report).
    """
    if not key.startswith(INCOMING_PREFIX):
        raise BadEvent(f"object key {key!r} is not a batch upload: expected {INCOMING_PREFIX}<batch_id>.csv")
    name = key[len(INCOMING_PREFIX) :]
    lowered = name.lower()
    for suffix, compressed in ((GZIP_SUFFIX, True), (CSV_SUFFIX, False)):
        if lowered.endswith(suffix):
            stem = name[: -len(suffix)]
            try:
                return Upload(key, checked_batch_id(stem), compressed)
            except BadEvent as exc:
                raise BadInput(f"upload {key!r} refused: {exc}") from None
    raise BadInput(
        f"upload {key!r} refused: the pipeline reads CSV only; upload it as "
        f"{INCOMING_PREFIX}<batch_id>.csv (or .csv.gz), e.g. saved from Excel as 'CSV UTF-8'"
    )


def report_batch_for(key: str) -> str:
    """The batch name a refused upload's report is filed under: the key's name under incoming/
    without a .csv/.csv.gz ending, made into a safe key part (control characters, empty, '.'
    and '..' segments replaced by '_'), so even a refused name leaves its report where the
    state machine's BatchRejected message points."""
    name = key[len(INCOMING_PREFIX) :] if key.startswith(INCOMING_PREFIX) else key
    lowered = name.lower()
    for suffix in (GZIP_SUFFIX, CSV_SUFFIX):
        if lowered.endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = "".join("_" if unicodedata.category(ch).startswith("C") else ch for ch in name)
    parts = ["_" if part in {"", ".", ".."} else part for part in name.split("/")]
    return "/".join(parts)[:200] or "_"


def decode(body: bytes, upload: Upload, limit: int) -> tuple[str, list[str]]:
    """The upload's bytes as text, and notes on what was done to get there."""
    notes: list[str] = []
    if upload.compressed:
        body = _gunzip(body, upload.key, limit)
        notes.append("decompressed gzip")
    if len(body) > limit:
        raise BadInput(
            f"upload {upload.key!r} is {len(body):,} bytes of CSV, over the {limit:,}-byte limit one "
            "invocation holds (MAX_BATCH_BYTES): split it into smaller batches"
        )
    if b"\x00" in body[:4096]:
        raise BadInput(
            f"upload {upload.key!r} contains NUL bytes: it is UTF-16 text or not text at all; "
            "save it as 'CSV UTF-8' (or plain CSV)"
        )
    try:
        return body.decode("utf-8-sig"), notes
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    try:
        text = body.decode(FALLBACK_ENCODING)
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"upload {upload.key!r} is neither UTF-8 nor Windows-1252 text (byte {exc.start}): "
            "malformed CSV; save it as 'CSV UTF-8'"
        ) from None
    notes.append(f"not UTF-8 (byte {first_bad}); read as Windows-1252, Excel's 'CSV' export encoding")
    return text, notes


def _gunzip(body: bytes, key: str, limit: int) -> bytes:
    """Decompress, stopping at the limit: a small .gz can expand to gigabytes."""
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadInput(
            f"upload {key!r} is not a valid gzip file ({exc}): compress it with gzip, or upload .csv"
        ) from None
    if len(data) > limit:
        raise BadInput(
            f"upload {key!r} expands to more than {limit:,} bytes of CSV, the limit one invocation "
            "holds (MAX_BATCH_BYTES): split it into smaller batches"
        )
    if not inflater.eof:
        raise BadInput(f"upload {key!r} is a truncated gzip file: upload it again")
    return data


_HEADER_SEPARATORS = re.compile(r"[\s\-]+")


def canonical_name(name: str) -> str:
    """' Transaction ID ' -> 'transaction_id': header names and allowed values compare this way."""
    return _HEADER_SEPARATORS.sub("_", name.strip()).lower()


def canonical_header(header: list[str]) -> tuple[list[str], dict[str, str]]:
    """The header with canonical names, and the renames made (for the report).
    Two names that become the same one are refused: which column is meant cannot be told."""
    names = [canonical_name(h) for h in header]
    seen: dict[str, str] = {}
    for raw, name in zip(header, names, strict=True):
        if not name:
            raise BadInput(f"malformed CSV: header has a blank column name {header}")
        if name in seen:
            raise BadInput(
                f"malformed CSV: header names {seen[name]!r} and {raw!r} are both column {name!r}; remove or rename one"
            )
        seen[name] = raw
    return names, {raw: name for raw, name in zip(header, names, strict=True) if raw != name}
