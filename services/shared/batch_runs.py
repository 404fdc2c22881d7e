"""Which upload a pipeline run belongs to, and whether it may still publish.

A batch can be uploaded again while an earlier run of it is still going (a correction). Each
run is tied to the revision of incoming/<batch>.csv it read: the S3 version id (the data bucket
is versioned), or the ETag where a bucket is not. Every output object carries that revision in
its metadata, each stage refuses input written for another revision, and before each write a
stage checks that its revision is still the latest for the key: a run that is no longer the
latest publishes nothing and ends with status "superseded". Linked into each function package
like runtime.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .runtime import REVISION_METADATA, ArtifactError, BadEvent, BadInput, Superseded, _is_missing, s3_client


@dataclass(frozen=True)
class Fetched:
    body: bytes
    revision: str
    metadata: dict[str, str]


def revision_of(response: dict[str, Any]) -> str:
    """Version id on a versioned bucket, else the ETag (which changes with the content)."""
    version = response.get("VersionId")
    if version and version != "null":
        return str(version)
    return str(response.get("ETag", "")).strip('"')


def event_revision(event: dict[str, Any]) -> str | None:
    """The revision an upload event names: EventBridge detail.object.version-id / etag, an S3
    notification's s3.object.versionId / eTag, or a plain event's "version_id"; None if none."""
    if isinstance(event.get("version_id"), str):
        return str(event["version_id"])
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        obj = records[0].get("s3", {}).get("object", {})
        found = _named(obj.get("versionId")) or obj.get("eTag")
    else:
        detail = event.get("detail", event)
        obj = detail.get("object", {}) if isinstance(detail, dict) else {}
        found = _named(obj.get("version-id")) or obj.get("etag")
    if found is not None and not isinstance(found, str):
        raise BadEvent(f"the event's object version/etag must be a string, got {found!r}")
    return found.strip('"') if found else None


def _named(version: object) -> object:
    # "null" is the version id of an object written while versioning was off: it names no revision.
    return None if version == "null" else version


@dataclass(frozen=True)
class Opened:
    """An object being read: its streaming body, and what names this revision of it."""

    body: Any  # botocore StreamingBody: read(n) pieces, never the whole object at once
    revision: str
    size: int
    metadata: dict[str, str]
    version_id: str | None  # None on an unversioned bucket (then the ETag names the revision)


def open_object(bucket: str, key: str, what: str, revision: str | None = None, max_bytes: int | None = None) -> Opened:
    """Start reading the object's current revision. If the run was started for another revision (a
    newer upload replaced it), the run is Superseded; more than max_bytes is refused before reading."""
    try:
        response = s3_client().get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if _is_missing(exc):
            raise BadInput(f"{what} s3://{bucket}/{key} does not exist (or is not readable)") from None
        raise
    found = revision_of(response)
    if revision is not None and found != revision:
        response["Body"].close()
        raise Superseded(f"{what} s3://{bucket}/{key} is now revision {found}; this run was started for {revision}")
    size = int(response.get("ContentLength", 0))
    if max_bytes is not None and size > max_bytes:
        response["Body"].close()
        raise BadInput(
            f"{what} s3://{bucket}/{key} is {size:,} bytes, over the {max_bytes:,}-byte limit one "
            "invocation holds (MAX_BATCH_BYTES): split it into smaller batches"
        )
    version = _named(response.get("VersionId"))
    return Opened(response["Body"], found, size, dict(response.get("Metadata", {})), version)  # type: ignore[arg-type]


def reopen(bucket: str, key: str, opened: Opened, **ranged: str) -> Any:
    """A new body for the same revision (to read it again, or a Range of it). On an unversioned
    bucket a newer upload under the key fails the If-Match: this run is then Superseded."""
    pinned = {"VersionId": opened.version_id} if opened.version_id else {"IfMatch": opened.revision}
    try:
        return s3_client().get_object(Bucket=bucket, Key=key, **pinned, **ranged)["Body"]
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") in {"PreconditionFailed", "412"}:
            raise Superseded(
                f"s3://{bucket}/{key} was replaced while this run read revision {opened.revision}"
            ) from None
        raise


def fetch(bucket: str, key: str, what: str, revision: str | None = None, max_bytes: int | None = None) -> Fetched:
    """Read the object's current revision whole (see open_object)."""
    opened = open_object(bucket, key, what, revision, max_bytes)
    return Fetched(bytes(opened.body.read()), opened.revision, opened.metadata)


def latest_revision(bucket: str, key: str) -> str:
    """The key's current revision. Without s3:ListBucket S3 answers a deleted key with 403 like
    a refused one, and a wrong policy must not pass for "superseded": both are an ArtifactError."""
    try:
        return revision_of(s3_client().head_object(Bucket=bucket, Key=key))
    except Exception as exc:
        if _is_missing(exc):
            raise ArtifactError(
                f"cannot read s3://{bucket}/{key} to check this run is still the latest: it was deleted, "
                "or the function lacks s3:GetObject on incoming/* (infra/template.yaml)"
            ) from None
        raise


def require_latest(bucket: str, key: str, revision: str) -> None:
    """Called right before a stage publishes: a newer upload of the batch wins."""
    latest = latest_revision(bucket, key)
    if latest != revision:
        raise Superseded(
            f"s3://{bucket}/{key} is now revision {latest} (this run read {revision}): "
            "the newer upload's run publishes the batch's outputs"
        )


def require_same_run(fetched: Fetched, bucket: str, key: str, revision: str) -> None:
    """An input written by another run of the batch (newer or older) is not this run's."""
    found = fetched.metadata.get(REVISION_METADATA)
    if found != revision:
        raise Superseded(
            f"s3://{bucket}/{key} belongs to revision {found} of the upload, this run to {revision}: "
            "a newer upload's run has replaced it"
        )


def run_source(event: dict[str, Any]) -> dict[str, str]:
    """{"source_key", "source_revision"} of the upload this run belongs to, as DataValidation
    returned them; {} for a manual rerun that names neither (then no run checks are made)."""
    run = {name: event[name] for name in ("source_key", "source_revision") if event.get(name) is not None}
    if run and (len(run) != 2 or not all(isinstance(v, str) and v for v in run.values())):
        raise BadEvent(f"source_key and source_revision go together, as strings; got {run}")
    return run
