"""Stream an upload from S3 through validate.scan into per-card chunks and the quarantine.

Nothing is visible while the upload is read: each output is a SpooledUpload (chunks.py) that the
handler publishes only once the whole upload is checked, and aborts otherwise. Valid rows go to
chunk hash(card_id) % N, so each card's transactions are all in one chunk and the chunks can be
scored in parallel exactly as one batch would be. N comes from the upload's size (TARGET_CHUNK_BYTES);
a batch of one chunk writes validated/<batch>/valid_rows.csv, exactly as before the fan-out.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import inputs, validate
from .batch_runs import Opened, reopen
from .chunks import SpooledUpload, chunk_key
from .runtime import REVISION_METADATA, BadInput, BatchKeys, Outputs
from .schema import Schema

# ~80,000 rows of the pipeline's CSV (about 75 bytes a row). FeatureEngineering builds 100,000 rows
# in ~28-35 s against moto, but two chunks of 111,000 side by side on this shared machine hit its
# 120 s Timeout (benchmarks/pipeline_scale.py): smaller chunks keep each run well inside it.
TARGET_CHUNK_BYTES = 6_000_000
# Validate's result lists the chunk keys for the Map (~300 bytes each): 256 stay under 80 KB of
# the 256 KB state payload. Larger uploads get larger chunks rather than more of them.
MAX_CHUNKS = 256
GZIP_GUESS = 5  # CSV inflates about 5x, when gzip's own size field cannot be trusted


def chunk_count(csv_bytes: int, target: int = TARGET_CHUNK_BYTES) -> int:
    return max(1, min(MAX_CHUNKS, math.ceil(csv_bytes / target)))


def chunk_target() -> int:
    """TARGET_CHUNK_BYTES, or the function's CHUNK_TARGET_BYTES (tests split small batches with it)."""
    raw = os.environ.get("CHUNK_TARGET_BYTES", "")
    if not raw:
        return TARGET_CHUNK_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise BadInput(f"CHUNK_TARGET_BYTES must be a positive whole number of bytes, got {raw!r}: fix the environment")
    return int(raw)


def csv_size(bucket: str, upload: inputs.Upload, opened: Opened) -> int:
    """The upload's size as CSV: its own size, or for gzip the size gzip records in its last 4
    bytes (modulo 4 GiB: a value below the compressed size cannot be right, so then a guess)."""
    if not upload.compressed or opened.size < 18:
        return opened.size
    tail = reopen(bucket, upload.key, opened, Range="bytes=-4").read()
    recorded = struct.unpack("<I", tail)[0] if len(tail) == 4 else 0
    return recorded if recorded >= opened.size else opened.size * GZIP_GUESS


@dataclass
class ChunkSink:
    """validate.Sink that spools valid rows into the batch's chunks and invalid ones into its quarantine."""

    bucket: str
    keys: BatchKeys
    revision: str
    chunks: int
    writers: dict[int, SpooledUpload] = field(default_factory=dict)
    quarantine: SpooledUpload | None = None

    @property
    def whole(self) -> bool:
        return self.chunks == 1

    def key(self, number: int) -> str:
        return self.keys.validated if self.whole else chunk_key("validated", self.keys.batch_id, self.revision, number)

    def _open(self, key: str, columns: list[str]) -> SpooledUpload:
        writer = SpooledUpload(self.bucket, key, {REVISION_METADATA: self.revision})
        writer.write(pd.DataFrame(columns=columns).to_csv(index=False))
        return writer

    def valid(self, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        out = rows.copy()
        # ISO 8601 with an explicit UTC offset, so the next stage parses exactly what was checked.
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.whole:
            parts: Any = [(0, out)]
        else:
            number = pd.util.hash_array(out["card_id"].to_numpy(dtype=object)) % self.chunks
            parts = out.groupby(number, sort=True)
        for number, part in parts:
            if number not in self.writers:
                self.writers[number] = self._open(self.key(number), list(out.columns))
            self.writers[number].write(part.to_csv(index=False, header=False))

    def invalid(self, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        if self.quarantine is None:
            self.quarantine = self._open(self.keys.quarantine, list(rows.columns))
        self.quarantine.write(rows.to_csv(index=False, header=False))

    def publish_quarantine(self, outputs: Outputs) -> str | None:
        if self.quarantine is None:
            return None
        outputs.written.append(self.quarantine.close())  # so a later failure removes it again
        self.quarantine = None
        return self.keys.quarantine

    def publish_chunks(self, outputs: Outputs) -> list[str]:
        """Each non-empty chunk's key, in chunk order (a chunk no card hashed to is not written)."""
        published = []
        for number in sorted(self.writers):
            published.append(self.writers.pop(number).close())
            outputs.written.append(published[-1])
        return published

    def abort(self) -> None:
        for writer in [*self.writers.values(), *([self.quarantine] if self.quarantine else [])]:
            writer.abort()
        self.writers.clear()
        self.quarantine = None


def split_upload(
    bucket: str, upload: inputs.Upload, opened: Opened, keys: BatchKeys, limit: int, schema: Schema
) -> tuple[ChunkSink, dict[str, Any]]:
    """Check the whole upload and spool its rows; returns the unpublished outputs and the report.

    Read again from the start (same revision) when it turns out not to be UTF-8 (then it is read
    as Windows-1252: one encoding per file) and when keys repeat across blocks (then their rows
    are held back and judged exactly): most uploads are read once."""
    chunks = chunk_count(csv_size(bucket, upload, opened), chunk_target())
    notes = ["decompressed gzip"] if upload.compressed else []
    encoding, held, body = "utf-8-sig", frozenset[int](), opened.body
    while True:
        sink = ChunkSink(bucket, keys, opened.revision, chunks)
        try:
            pieces = inputs.upload_pieces(body.read, upload, limit)
            scanned = validate.scan(inputs.text_lines(pieces, upload.key, encoding), schema, sink, tuple(notes), held)
        except inputs.NotUtf8 as exc:
            sink.abort()
            body.close()
            encoding = inputs.FALLBACK_ENCODING
            notes.append(inputs.fallback_note(exc.offset))
            body = reopen(bucket, upload.key, opened)
            continue
        except BaseException:
            sink.abort()
            body.close()
            raise
        body.close()
        if not scanned.candidates:
            return sink, scanned.report
        sink.abort()
        held = scanned.candidates
        body = reopen(bucket, upload.key, opened)
