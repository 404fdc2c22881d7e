"""Release history: one record per deploy or rollback that ended verified, kept in the stage itself.

    s3://<deployment bucket>/releases/<stack>/0007.json            the record (written last)
    s3://<deployment bucket>/releases/<stack>/0007.template.json   the exact template deployed
    s3://<deployment bucket>/releases/<stack>/0007.report.json     the build report of its layers
                                                                   (for `inv size-report`)

The deployment bucket is the one `sam deploy --resolve-s3` made for the account and region, so
every operator of the stage sees the same history; build/releases/<stage>/ mirrors it. `inv releases`
reads it (`release_store`: no lock, no gates) and shows it as a table (`release_table`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from ..config.stages import load_stage
from ..core.errors import ReleaseError
from ..core.paths import BuildPaths
from .local_emulator import emulator_endpoint
from .stage_session import StageSession

SAM_MANAGED_STACK = "aws-sam-cli-managed-default"
SCHEMA = 1


@dataclass(frozen=True)
class Release:
    number: int
    kind: str  # "deploy", "rollback" (inv rollback) or "restore" (automatic, after a failed check)
    time: str
    stage: str
    stack_name: str
    git_commit: str
    git_dirty: bool
    caller_account: str
    caller_arn: str
    layers: dict[str, dict[str, str]]  # layer folder -> {"arn", "sha256"}
    functions: dict[str, dict[str, Any]]  # logical id -> {"name", "version", "layers": [arn, ...]}
    template_sha256: str
    parameters: dict[str, str]
    restores: int | None = None  # for a rollback or restore: the release it returned to
    note: str = ""
    schema: int = SCHEMA

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Release:
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def deployment_bucket(session: StageSession) -> str | None:
    """The bucket `sam deploy --resolve-s3` uses in the stage's account and region (None before the first deploy)."""
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=SAM_MANAGED_STACK)["Stacks"]
    except ClientError:
        return None
    for output in stacks[0].get("Outputs", []):
        if output.get("OutputKey") == "SourceBucket":
            return str(output["OutputValue"])
    return None


class ReleaseStore:
    def __init__(self, session: StageSession, mirror: Path) -> None:
        self.session = session
        self.stack = session.stage.stack_name
        self.mirror = mirror
        self._bucket: str | None = None

    @property
    def bucket(self) -> str | None:
        if self._bucket is None:
            self._bucket = deployment_bucket(self.session)
        return self._bucket

    def _key(self, number: int, suffix: str = "") -> str:
        return f"releases/{self.stack}/{number:04d}{suffix}.json"

    def releases(self) -> list[Release]:
        """Every recorded release, oldest first (and the local mirror brought up to date)."""
        if self.bucket is None:
            self._mirror([])
            return []
        s3 = self.session.client("s3")
        records = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"releases/{self.stack}/"):
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                if name.endswith(".json") and not name.endswith((".template.json", ".report.json")):
                    body = s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                    records.append(Release.from_json(json.loads(body)))
        records.sort(key=lambda r: r.number)
        self._mirror(records)
        return records

    def get(self, number: int, releases: list[Release] | None = None) -> Release:
        known = releases if releases is not None else self.releases()
        for release in known:
            if release.number == number:
                return release
        listed = ", ".join(str(r.number) for r in known) or "none yet"
        raise ReleaseError(
            f"Stage {self.session.stage.name!r} has no release {number} (releases: {listed}). "
            f"See `inv releases --stage {self.session.stage.name}`."
        )

    def template(self, release: Release) -> dict[str, Any]:
        if self.bucket is None:
            raise ReleaseError(f"Stage {self.session.stage.name!r} has no deployment bucket, so no release history.")
        body = self.session.client("s3").get_object(Bucket=self.bucket, Key=self._key(release.number, ".template"))
        data: dict[str, Any] = json.loads(body["Body"].read())
        return data

    def build_report(self, release: Release) -> dict[str, Any] | None:
        """The build report stored with the release (None: recorded before deploys stored one)."""
        if self.bucket is None:
            return None
        try:
            body = self.session.client("s3").get_object(Bucket=self.bucket, Key=self._key(release.number, ".report"))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        data: dict[str, Any] = json.loads(body["Body"].read())
        return data

    def record(self, release: Release, template: dict[str, Any], build_report: dict[str, Any] | None = None) -> None:
        """Store the template and build report, then the record: a record never points at a template
        that is not there."""
        if self.bucket is None:
            raise ReleaseError("No deployment bucket was found after the deploy (sam's managed stack is missing).")
        s3 = self.session.client("s3")
        s3.put_object(
            Bucket=self.bucket,
            Key=self._key(release.number, ".template"),
            Body=json.dumps(template, indent=1).encode(),
            ContentType="application/json",
        )
        if build_report is not None:
            s3.put_object(
                Bucket=self.bucket,
                Key=self._key(release.number, ".report"),
                Body=json.dumps(build_report, indent=1).encode(),
                ContentType="application/json",
            )
        s3.put_object(
            Bucket=self.bucket,
            Key=self._key(release.number),
            Body=json.dumps(asdict(release), indent=2).encode(),
            ContentType="application/json",
        )
        self.releases()

    def _mirror(self, records: list[Release]) -> None:
        """build/releases/<stage>/ holds exactly the stage's records (a new emulator starts empty)."""
        partial = self.mirror.with_name(self.mirror.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for release in records:
            (partial / f"{release.number:04d}.json").write_text(json.dumps(asdict(release), indent=2) + "\n")
        shutil.rmtree(self.mirror, ignore_errors=True)
        partial.replace(self.mirror)


def release_table(history: list[Release]) -> str:
    header = ("release", "kind", "time (UTC)", "commit", "layers", "note")
    rows = []
    for release in history:
        commit = release.git_commit[:10] + ("+dirty" if release.git_dirty else "")
        layers = ", ".join(
            f"{folder}:{info['arn'].rsplit(':', 1)[-1]}" for folder, info in sorted(release.layers.items())
        )
        kind = f"{release.kind} of {release.restores}" if release.restores else release.kind
        rows.append((str(release.number), kind, release.time, commit, layers, release.note))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append(f"current: release {history[-1].number}")
    return "\n".join(lines)


def release_store(root: Path, stage_name: str) -> ReleaseStore:
    """The stage's release history, to read (no lock, no gates; the local stage's emulator must run)."""
    stage = load_stage(root, stage_name)
    paths = BuildPaths.of(root)
    endpoint = emulator_endpoint(paths, start=False, say=print) if stage.emulated else None
    session = StageSession(stage, endpoint)
    session.caller()
    return ReleaseStore(session, paths.releases(stage.name))


def releases(root: Path, stage_name: str) -> list[Release]:
    """The stage's release history (read-only: no lock, no gates)."""
    return release_store(root, stage_name).releases()
