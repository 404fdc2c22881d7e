"""What real uploads look like, turned into the one form validate.py checks.

Each rule here either accepts an input and says how it was normalized (a note that goes
into the validation report) or refuses it with BadInput naming the fix. docs/pipeline.md
("Real-world inputs") lists every case and why it is accepted or refused.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .runtime import INCOMING_PREFIX, BadEvent, BadInput, checked_batch_id

# Upload names, matched case-insensitively (Windows and Excel write ".CSV").
CSV_SUFFIX = ".csv"
GZIP_SUFFIX = ".csv.gz"
# DataValidation streams an upload in bounded memory, so what limits an upload is the time one
# invocation takes to read, check and split it (Timeout 900 s, docs/pipeline.md "Batch size"):
# a larger one is refused with a report naming the limit. Configurable (MAX_BATCH_BYTES).
DEFAULT_MAX_BATCH_BYTES = 2_000_000_000
READ_BYTES = 1 << 20  # one piece of the upload read (and, gzip, inflated) at a time
NUL_PROBE_BYTES = 4096  # NUL bytes this early mean UTF-16 or binary, not CSV text
MAX_LINE_CHARS = 16 << 20  # no CSV line of this pipeline is near this; guards memory
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


class NotUtf8(Exception):
    """The upload is not UTF-8 at byte `offset`: the caller reads it again as Windows-1252
    (a file is read in one encoding, so everything before that byte must be read again too)."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"not UTF-8 at byte {offset}")
        self.offset = offset


def upload_pieces(read: Callable[[int], bytes], upload: Upload, limit: int) -> Iterator[bytes]:
    """The upload's CSV bytes, READ_BYTES at a time from `read` (a streaming S3 body): inflated
    while reading if it is gzip, refused past `limit` bytes of CSV or with NUL bytes at the start.
    Nothing larger than a piece is held, so any size streams in bounded memory."""
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16) if upload.compressed else None
    total, head_checked = 0, False
    while True:
        raw = read(READ_BYTES)
        if not raw:
            if inflater is not None and not inflater.eof:
                raise BadInput(f"upload {upload.key!r} is a truncated gzip file: upload it again")
            return
        for data in _inflated(inflater, raw, upload.key) if inflater is not None else (raw,):
            total += len(data)
            if total > limit:
                raise BadInput(_too_big(upload, limit))
            if not head_checked and b"\x00" in data[:NUL_PROBE_BYTES]:
                raise BadInput(
                    f"upload {upload.key!r} contains NUL bytes: it is UTF-16 text or not text at all; "
                    "save it as 'CSV UTF-8' (or plain CSV)"
                )
            head_checked = head_checked or total >= NUL_PROBE_BYTES
            if data:
                yield data
        if inflater is not None and inflater.eof:
            return  # the gzip stream's end: anything after it is not part of the batch


def _inflated(inflater: Any, raw: bytes, key: str) -> Iterator[bytes]:
    """Inflate one piece READ_BYTES of output at a time: a small .gz can expand to gigabytes."""
    try:
        yield inflater.decompress(raw, READ_BYTES)
        while inflater.unconsumed_tail and not inflater.eof:
            yield inflater.decompress(inflater.unconsumed_tail, READ_BYTES)
    except zlib.error as exc:
        raise BadInput(
            f"upload {key!r} is not a valid gzip file ({exc}): compress it with gzip, or upload .csv"
        ) from None


def _too_big(upload: Upload, limit: int) -> str:
    if upload.compressed:
        return (
            f"upload {upload.key!r} expands to more than {limit:,} bytes of CSV, the limit one invocation "
            "holds (MAX_BATCH_BYTES): split it into smaller batches"
        )
    return (
        f"upload {upload.key!r} is over the {limit:,}-byte limit one invocation holds (MAX_BATCH_BYTES): "
        "split it into smaller batches"
    )


def text_lines(pieces: Iterable[bytes], key: str, encoding: str = "utf-8-sig") -> Iterator[str]:
    """Decoded lines with their endings (\n, \r\n or \r, as csv.reader wants them), piece by piece.
    UTF-8 that turns out not to be raises NotUtf8 (read it again as Windows-1252); Windows-1252
    that is not refuses the upload."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, rest = 0, ""
    for piece in pieces:
        pending = len(decoder.getstate()[0])  # bytes of a character split across pieces
        try:
            text = decoder.decode(piece)
        except UnicodeDecodeError as exc:
            at = offset - pending + exc.start
            if encoding != FALLBACK_ENCODING:
                raise NotUtf8(at) from None
            raise BadInput(
                f"upload {key!r} is neither UTF-8 nor Windows-1252 text (byte {at}): "
                "malformed CSV; save it as 'CSV UTF-8'"
            ) from None
        offset += len(piece)
        lines = io.StringIO(rest + text, newline="").readlines()
        # The last line may continue in the next piece (a lone '\r' may be half of '\r\n').
        rest = lines.pop() if lines and not lines[-1].endswith("\n") else ""
        if len(rest) > MAX_LINE_CHARS:
            raise BadInput(f"malformed CSV: upload {key!r} has a line longer than {MAX_LINE_CHARS:,} characters")
        yield from lines
    try:
        rest += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        if encoding != FALLBACK_ENCODING:
            raise NotUtf8(offset) from None
        raise BadInput(f"upload {key!r} ends inside a character: malformed CSV; save it as 'CSV UTF-8'") from None
    if rest:
        yield from io.StringIO(rest, newline="").readlines()


def fallback_note(offset: int) -> str:
    return f"not UTF-8 (byte {offset}); read as Windows-1252, Excel's 'CSV' export encoding"


_HEADER_SEPARATORS = re.compile(r"[\s\-]+")


def canonical_name(name: str) -> str:
    """' Transaction ID ' -> 'transaction_id': header names and allowed values compare this way."""
    return _HEADER_SEPARATORS.sub("_", name.strip()).lower()


# Delimiters spreadsheets write instead of a comma: a semicolon where the decimal mark is a comma
# (Excel in much of Europe), a tab ("Text (Tab delimited)", copy-paste), a pipe.
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def other_delimiter(header: list[str], required: Iterable[str]) -> str | None:
    """The delimiter a header read as comma-separated was really split by, if splitting it there
    finds required column names the comma did not; else None."""
    wanted = set(required)
    found = wanted & {canonical_name(name) for name in header}
    for delimiter in OTHER_DELIMITERS:
        if not any(delimiter in name for name in header):
            continue
        names = {canonical_name(part) for name in header for part in name.split(delimiter)}
        if len(wanted & names) > len(found):
            return delimiter
    return None


def delimiter_message(delimiter: str, header: list[str]) -> str:
    name = OTHER_DELIMITERS[delimiter]
    shown = ",".join(header)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return (
        f"the batch is {name}-delimited (its header {shown!r} has {delimiter!r} between the column names), "
        f'but the pipeline reads comma-separated CSV: save it as "CSV UTF-8 (Comma delimited)" or replace '
        f"each {name} between fields with a comma, and upload it again"
    )


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
