"""A large upload split into chunks: where each chunk's objects live, and how they are written.

DataValidation splits an upload by card (a hash of card_id) into chunks; the state machine's Map
runs FeatureEngineering -> Predictions on each chunk; Merge joins the chunks' results into the keys
a small batch gets (docs/pipeline.md, "Batch size"). A small batch is one chunk whose keys are the
batch's own (validated/<batch>/valid_rows.csv, features/..., predictions/...), so it is written
and read exactly as before. A chunk of a larger batch lives under

    chunks/<stage>/<batch>/<revision>/<n>.csv      stage: validated | features | predictions

one folder per upload revision, so two runs of a batch never write each other's chunks, and each
stage's prefix is its own (the template grants each function only the prefixes it writes).
Linked into each function package like runtime.py.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from .runtime import BadEvent, BatchKeys, s3_client

CHUNKS_PREFIX = "chunks/"
STAGES = ("validated", "features", "predictions")
# S3 refuses a multipart part under 5 MiB unless it is the last one.
MIN_PART_BYTES = 5 * 1024 * 1024


def chunk_key(stage: str, batch_id: str, revision: str, number: int) -> str:
    return f"{CHUNKS_PREFIX}{stage}/{batch_id}/{revision}/{number:04d}.csv"


@dataclass(frozen=True)
class ChunkKeys:
    """Where one chunk's stages read and write. `whole`: the chunk is the whole batch."""

    validated: str
    features: str
    predictions: str
    whole: bool

    @property
    def summary(self) -> str:
        """A chunk's summary of its predictions (rows, flagged, model), which Merge adds up."""
        return self.predictions.removesuffix(".csv") + ".json"


def chunk_keys(keys: BatchKeys, chunk: object) -> ChunkKeys:
    """The keys of the chunk an event names (`None`: the whole batch, the event shape from before
    the fan-out). A chunk must be one of the batch's: anything else is a bad event."""
    if chunk is None or chunk == keys.validated:
        return ChunkKeys(keys.validated, keys.features, keys.predictions, whole=True)
    prefix = f"{CHUNKS_PREFIX}validated/{keys.batch_id}/"
    if not isinstance(chunk, str) or not chunk.startswith(prefix) or not chunk.endswith(".csv"):
        raise BadEvent(
            f"chunk {chunk!r} is not a chunk of batch {keys.batch_id!r}: expected {keys.validated} "
            f"or {prefix}<revision>/<n>.csv, as DataValidation lists them"
        )
    rest = chunk[len(f"{CHUNKS_PREFIX}validated/") :]
    return ChunkKeys(chunk, f"{CHUNKS_PREFIX}features/{rest}", f"{CHUNKS_PREFIX}predictions/{rest}", whole=False)


class SpooledUpload:
    """One S3 object written piece by piece with bounded memory.

    Text goes to a file in /tmp; each time the file holds MIN_PART_BYTES it is sent as a part of a
    multipart upload (started on the first part) and the file starts over, so one object costs at
    most a part's worth of disk and one part of memory while it is sent. An object that never
    reaches a part's size is sent with one PutObject on close: a small batch's objects are written
    exactly as before. Nothing is visible under the key before `close`; `abort` leaves nothing.
    """

    def __init__(self, bucket: str, key: str, metadata: dict[str, str], content_type: str = "text/csv") -> None:
        self.bucket, self.key = bucket, key
        self.extra = {"Metadata": metadata, "ContentType": content_type}
        # Closed by close() or abort(): the spool lives as long as the object being written.
        self._file = tempfile.TemporaryFile("w+b", dir=os.environ.get("CHUNK_SPOOL_DIR") or None)  # noqa: SIM115
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.bytes = 0

    def write(self, text: str) -> None:
        data = text.encode()
        self._file.write(data)
        self.bytes += len(data)
        if self._file.tell() >= MIN_PART_BYTES:
            self._send_part()

    def _send_part(self) -> None:
        if self._upload_id is None:
            started = s3_client().create_multipart_upload(Bucket=self.bucket, Key=self.key, **self.extra)
            self._upload_id = started["UploadId"]
        self._file.seek(0)
        body = self._file.read()
        number = len(self._parts) + 1
        sent = s3_client().upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})
        self._file.seek(0)
        self._file.truncate()

    def close(self) -> str:
        """Publish the object; returns its key."""
        if self._upload_id is None:
            self._file.seek(0)
            s3_client().put_object(Bucket=self.bucket, Key=self.key, Body=self._file.read(), **self.extra)
        else:
            if self._file.tell():
                self._send_part()
            s3_client().complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._file.close()
        return self.key

    def abort(self) -> None:
        """Drop what was written (best effort: the error being handled matters more)."""
        if self._upload_id is not None:
            with contextlib.suppress(Exception):
                s3_client().abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
        self._file.close()
