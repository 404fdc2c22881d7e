"""Join CSV objects (one header each) into one object, inside S3: multipart UploadPartCopy.

Each source after the first is copied without its header line (a byte range of it). S3 takes a
part of at least 5 MiB unless it is the last, so ranges under that are read into a buffer and
sent as bytes, topped up from the start of the next range: at most two parts' worth (10 MiB) of
the batch ever passes through the function, whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass

from .chunks import MIN_PART_BYTES
from .runtime import REVISION_METADATA, ArtifactError, Superseded, s3_client

HEADER_PROBE_BYTES = 64 * 1024  # a header line is far shorter


@dataclass(frozen=True)
class Piece:
    """Bytes [start, end) of one source object."""

    key: str
    start: int
    end: int


def plan(bucket: str, sources: list[str], revision: str | None) -> list[Piece]:
    """The byte ranges to join: the first source whole, the others without their header, which
    must be the first one's. Every source must belong to the run (`revision`, when known)."""
    header = _read(bucket, sources[0], 0, HEADER_PROBE_BYTES).split(b"\n", 1)[0] + b"\n"
    pieces = []
    for number, key in enumerate(sources):
        head = s3_client().head_object(Bucket=bucket, Key=key)
        found = head.get("Metadata", {}).get(REVISION_METADATA)
        if revision is not None and found != revision:
            raise Superseded(
                f"s3://{bucket}/{key} belongs to revision {found} of the upload, this run to {revision}: "
                "a newer upload's run has replaced it"
            )
        size = int(head["ContentLength"])
        if number and _read(bucket, key, 0, len(header)) != header:
            raise ArtifactError(
                f"s3://{bucket}/{key} does not start with the header of {sources[0]}: the chunks were not "
                "written by one run; rerun the batch (upload it again)"
            )
        pieces.append(Piece(key, len(header) if number else 0, size))
    return pieces


def join(bucket: str, pieces: list[Piece], target: str, metadata: dict[str, str]) -> str:
    """Write `pieces` one after another as `target` (nothing visible there before it completes)."""
    s3 = s3_client()
    upload = s3.create_multipart_upload(Bucket=bucket, Key=target, Metadata=metadata, ContentType="text/csv")
    parts: list[dict[str, object]] = []

    def send(body: bytes | None = None, piece: Piece | None = None) -> None:
        number = len(parts) + 1
        common = {"Bucket": bucket, "Key": target, "UploadId": upload["UploadId"], "PartNumber": number}
        if piece is not None:
            copied = s3.upload_part_copy(
                **common,
                CopySource={"Bucket": bucket, "Key": piece.key},
                CopySourceRange=f"bytes={piece.start}-{piece.end - 1}",
            )
            parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
        else:
            parts.append({"PartNumber": number, "ETag": s3.upload_part(**common, Body=body)["ETag"]})

    try:
        pending = bytearray()
        for piece in pieces:
            start = piece.start
            if pending:  # a short part must grow to MIN_PART_BYTES before it can be sent
                take = min(MIN_PART_BYTES - len(pending), piece.end - start)
                pending += _read(bucket, piece.key, start, take)
                start += take
                if len(pending) >= MIN_PART_BYTES:
                    send(bytes(pending))
                    pending = bytearray()
            if start >= piece.end:
                continue
            if piece.end - start >= MIN_PART_BYTES:
                send(piece=Piece(piece.key, start, piece.end))
            else:
                pending += _read(bucket, piece.key, start, piece.end - start)
        if pending or not parts:
            send(bytes(pending))  # the last part may be short
        s3.complete_multipart_upload(
            Bucket=bucket, Key=target, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=target, UploadId=upload["UploadId"])
        raise
    return target


def _read(bucket: str, key: str, start: int, length: int) -> bytes:
    if length <= 0:
        return b""
    response = s3_client().get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")
    return bytes(response["Body"].read())
