"""Release history in the stage bucket: one record per deploy or rollback that ended verified.

    s3://<deployment bucket>/releases/<stack>/0007.template.json   the exact template deployed;
                                                                   written first, only if absent:
                                                                   it claims number 7
    s3://<deployment bucket>/releases/<stack>/0007.report.json     the build report of its layers
                                                                   (for `inv size-report`)
    s3://<deployment bucket>/releases/<stack>/0007.json            the record (written last)

The deployment bucket is the one `sam deploy --resolve-s3` made for the account and region, so
every operator of the stage sees the same history; build/releases/<stage>/ mirrors it. Numbers are
claimed with a conditional write (If-None-Match: *), so two operators never record one number;
each record is checked when read (release_history.py), and `inv releases` (`release_store`: no
lock, no gates) shows the good ones and names the bad or missing ones.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from ..config.stages import load_stage
from ..core.errors import ReleaseError, StageBusy
from ..core.paths import BuildPaths
from ..local.process_identity import process_identity
from .deployed_state import read_stack
from .drift import drift_message
from .local_emulator import emulator_endpoint, emulator_guard
from .release_history import RECORD_NAME, History, Release, assemble_history, template_sha256
from .stage_session import StageSession

SAM_MANAGED_STACK = "aws-sam-cli-managed-default"
CLAIM_ATTEMPTS = 10
# How S3 (and moto) refuse a PutObject with If-None-Match: * when the key is taken.
ALREADY_THERE = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
LEASE_NAME = "lease.json"  # outside RECORD_NAME: the history ignores it


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
        self._read: History | None = None  # the history as last read or written by this command

    @property
    def bucket(self) -> str | None:
        if self._bucket is None:
            self._bucket = deployment_bucket(self.session)
        return self._bucket

    @property
    def prefix(self) -> str:
        return f"releases/{self.stack}/"

    def _key(self, number: int, suffix: str = "") -> str:
        return f"{self.prefix}{number:04d}{suffix}.json"

    def history(self) -> History:
        """Every record, checked, oldest first, and every used number without a good record (the
        local mirror brought up to date; a bad record's last good copy kept there)."""
        if self.bucket is None:
            return self._keep(History(()))
        s3 = self.session.client("s3")
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        bodies = {}
        for key in keys:
            found = RECORD_NAME.fullmatch(key.removeprefix(self.prefix))
            if found and not found.group(2):
                bodies[key] = s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        copies = self._mirror_copies()
        return self._keep(assemble_history(self.prefix, keys, bodies, self.stack, self.bucket, copies))

    def known_history(self) -> History:
        """The history as this command last read (or recorded) it, read now if it has not: for
        what needs only the state the command started from. Claiming a number reads afresh
        (record): an operator outside the lease may have recorded meanwhile."""
        return self._read if self._read is not None else self.history()

    def _keep(self, history: History) -> History:
        self._mirror(history)
        self._read = history
        return history

    def get(self, number: int, history: History) -> Release:
        for release in history.releases:
            if release.number == number:
                return release
        bad = history.bad_record(number)
        if bad is not None:
            raise ReleaseError(
                f"Stage {self.session.stage.name!r} cannot return to release {number}. {bad.message(history.bucket)}"
            )
        listed = ", ".join(str(r.number) for r in history.releases) or "none yet"
        raise ReleaseError(
            f"Stage {self.session.stage.name!r} has no release {number} (releases: {listed}). "
            f"See `inv releases --stage {self.session.stage.name}`."
        )

    def template(self, release: Release) -> dict[str, Any]:
        """The template stored with `release`, refused unless it is the one its record names."""
        if self.bucket is None:
            raise ReleaseError(f"Stage {self.session.stage.name!r} has no deployment bucket, so no release history.")
        key = self._key(release.number, ".template")
        where = f"s3://{self.bucket}/{key}"
        try:
            body = self.session.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _code(exc) not in ("NoSuchKey", "404"):
                raise
            raise ReleaseError(
                f"Release {release.number}'s template {where} is missing, so the release cannot be deployed again. "
                f"Fix: put it back (`aws s3api list-object-versions --bucket {self.bucket} --prefix {key}`) "
                "or return to another release. Nothing was deployed."
            ) from None
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            data, problem = None, f"is not JSON ({exc})"
        if isinstance(data, dict) and template_sha256(data) == release.template_sha256:
            return data
        if isinstance(data, dict):
            problem = (
                f"has sha256 {template_sha256(data)[:12]}..., but release {release.number} recorded "
                f"{release.template_sha256[:12]}...: it was changed after the release"
            )
        elif data is not None:
            problem = "is not a JSON object"
        raise ReleaseError(
            f"Release {release.number}'s template {where} {problem}. It is not what ran, so it is not deployed. "
            f"Fix: put back the version stored with the release "
            f"(`aws s3api list-object-versions --bucket {self.bucket} --prefix {key}`), or return to another "
            "release. Nothing was deployed."
        )

    def build_report(self, release: Release) -> dict[str, Any] | None:
        """The build report stored with the release (None: recorded before deploys stored one, or unreadable)."""
        if self.bucket is None:
            return None
        try:
            body = self.session.client("s3").get_object(Bucket=self.bucket, Key=self._key(release.number, ".report"))
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        try:
            data = json.loads(body["Body"].read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def _claim(self, number: int, template: dict[str, Any], release: Release) -> bool:
        """Write the template under `number` only if no object is there: S3 (and moto) refuse a
        second PutObject with If-None-Match: *, so two operators never hold one number."""
        try:
            self.session.client("s3").put_object(
                Bucket=self.bucket,
                Key=self._key(number, ".template"),
                Body=json.dumps(template, indent=1).encode(),
                ContentType="application/json",
                IfNoneMatch="*",
                Metadata={"caller-arn": release.caller_arn, "git-commit": release.git_commit},
            )
        except ClientError as exc:
            if _code(exc) in ALREADY_THERE:
                return False
            raise
        return True

    def _holder(self, number: int) -> str:
        """Who claimed `number`, as its template's metadata says."""
        try:
            head = self.session.client("s3").head_object(Bucket=self.bucket, Key=self._key(number, ".template"))
        except ClientError:
            return "another command"
        meta = head.get("Metadata", {})
        commit = str(meta.get("git-commit", "?"))[:10]
        return f"{meta.get('caller-arn', 'another command')} (commit {commit}, {head.get('LastModified', '?')})"

    def record(
        self,
        release: Release,
        template: dict[str, Any],
        build_report: dict[str, Any] | None = None,
        say: Callable[[str], None] = print,
    ) -> Release:
        """Claim the first free number from `release.number` on, then store the template, the build
        report and last the record (a record never points at a template that is not there). Returns
        the release as recorded: its number is the next free one when another operator took it."""
        if self.bucket is None:
            raise ReleaseError("No deployment bucket was found after the deploy (sam's managed stack is missing).")
        # Read afresh: minutes of sam deploy and checks have passed since the command read it.
        fresh = self.history()
        number = max(release.number, fresh.next_number)
        for _ in range(CLAIM_ATTEMPTS):
            if self._claim(number, template, release):
                break
            say(
                f"Release number {number} was taken meanwhile by {self._holder(number)}: another command "
                f"changed stage {self.session.stage.name!r} at the same time. This one is recorded under "
                f"the next free number; see `inv releases --stage {self.session.stage.name}`."
            )
            fresh = self.history()
            number = max(number + 1, fresh.next_number)
        else:
            raise ReleaseError(
                f"Could not claim a release number for stage {self.session.stage.name!r} after {CLAIM_ATTEMPTS} "
                f"tries: other commands keep taking them (last tried {number}). The stage runs this command's "
                f"verified change, unrecorded. Fix: when the others are done, run `inv releases --stage "
                f"{self.session.stage.name}` and deploy again."
            )
        claimed = replace(release, number=number)
        s3 = self.session.client("s3")
        if build_report is not None:
            s3.put_object(
                Bucket=self.bucket,
                Key=self._key(number, ".report"),
                Body=json.dumps(build_report, indent=1).encode(),
                ContentType="application/json",
            )
        try:
            s3.put_object(
                Bucket=self.bucket,
                Key=self._key(number),
                Body=json.dumps(asdict(claimed), indent=2).encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if _code(exc) not in ALREADY_THERE:
                raise
            raise ReleaseError(
                f"s3://{self.bucket}/{self._key(number)} was written by another command after this one claimed "
                f"number {number} (one that does not claim numbers: an older checkout?). This command's verified "
                f"change runs, unrecorded. Fix: update every checkout that deploys stage "
                f"{self.session.stage.name!r}, then check `inv releases --stage {self.session.stage.name}`."
            ) from None
        # The history as read before the claim, with this record: no third read just to mirror it.
        self._keep(replace(fresh, releases=(*fresh.releases, claimed)))
        return claimed

    @contextmanager
    def lease(self, command: str, caller_arn: str) -> Iterator[None]:
        """One command changes the stage at a time, whichever checkout or machine it runs from:
        `lease.json` beside the records, written only if absent (If-None-Match, as a number is
        claimed) and deleted when the command ends. A holder that is gone (this machine's pid, no
        longer that process: SIGKILL) is replaced; any other is named in the refusal. Before the
        first deploy there is no bucket, and CloudFormation refuses a second creation of the stack."""
        if self.bucket is None:
            yield
            return
        key = f"{self.prefix}{LEASE_NAME}"
        me = process_identity(os.getpid())
        holder = {
            "command": command,
            "caller_arn": caller_arn,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "start_ticks": me.start_ticks if me else None,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        s3 = self.session.client("s3")
        for attempt in range(2):
            try:
                s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(holder).encode(), IfNoneMatch="*")
                break
            except ClientError as exc:
                if _code(exc) not in ALREADY_THERE:
                    raise
            other = self._lease_holder(key)
            if attempt == 0 and other is not None and _holder_gone(other):
                s3.delete_object(Bucket=self.bucket, Key=key)
                continue
            raise StageBusy(
                f"Stage {self.session.stage.name!r} is busy: {_describe(other)} is changing it (s3://{self.bucket}/"
                f"{key}). Two changes of one stage at once could leave it on neither release; nothing was "
                f"uploaded. Fix: wait for it to finish and run again; if that command is gone for good (its "
                f"machine died), delete that object, check `inv releases --stage {self.session.stage.name}`, "
                "then run again."
            )
        try:
            yield
        finally:
            # Never hides how the command ended: a lease left behind names a process that is gone.
            with suppress(ClientError, BotoCoreError):
                s3.delete_object(Bucket=self.bucket, Key=key)

    def _lease_holder(self, key: str) -> dict[str, Any] | None:
        try:
            body = self.session.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
            data = json.loads(body)
        except (ClientError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def _mirror_copies(self) -> dict[int, Path]:
        copies = {}
        for path in self.mirror.glob("*.json") if self.mirror.is_dir() else []:
            if path.stem.isdigit():
                copies[int(path.stem)] = path
        return copies

    def _mirror(self, history: History) -> None:
        """build/releases/<stage>/ holds exactly the stage's good records (a new emulator starts
        empty), and the last good copy of a record that has gone bad or missing since."""
        partial = self.mirror.with_name(self.mirror.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for release in history.releases:
            (partial / f"{release.number:04d}.json").write_text(json.dumps(asdict(release), indent=2) + "\n")
        for bad in history.bad:
            if bad.copy is not None and bad.copy.is_file():
                shutil.copy2(bad.copy, partial / bad.copy.name)
        shutil.rmtree(self.mirror, ignore_errors=True)
        partial.replace(self.mirror)


def _holder_gone(holder: dict[str, Any]) -> bool:
    """Whether a lease's holder ran on this machine and has ended (its pid gone or another process)."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int) or isinstance(pid, bool):
        return False
    running = process_identity(pid)
    return running is None or running.start_ticks != holder.get("start_ticks")


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "another command"
    return (
        f"`{holder.get('command', '?')}` of {holder.get('caller_arn', '?')} (host {holder.get('host', '?')}, "
        f"pid {holder.get('pid', '?')}, started {holder.get('started', '?')})"
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def release_store(root: Path, stage_name: str, command: str = "inv releases") -> ReleaseStore:
    """The stage's release history, to read (no lock, no gates; the local stage's emulator must run)."""
    stage = load_stage(root, stage_name)
    paths = BuildPaths.of(root)
    needed_by = f"`{command} --stage {stage.name}`"
    endpoint = emulator_endpoint(paths, start=False, say=print, needed_by=needed_by) if stage.emulated else None
    session = StageSession(stage, endpoint)
    with emulator_guard(paths, endpoint, needed_by.strip("`")):
        session.caller()
    return ReleaseStore(session, paths.releases(stage.name))


def read_releases(root: Path, stage_name: str) -> tuple[History, str | None]:
    """The stage's release history and, when the stage does not run what its latest record says,
    what it runs instead (read-only: no lock, no gates)."""
    store = release_store(root, stage_name)
    with emulator_guard(BuildPaths.of(root), store.session.endpoint_url, f"inv releases --stage {stage_name}"):
        history = store.history()
        return history, drift_message(store.session.stage.name, read_stack(store.session), history)
