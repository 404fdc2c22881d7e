"""The release history's rules, without AWS: what a release record holds, how a record read from
the stage bucket is checked, which numbers are used (a bad or missing record keeps its number),
and the history as a table. The S3 side is releases.py."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ReleaseError

SCHEMA = 1
KINDS = ("deploy", "rollback", "restore")
RECORD_NAME = re.compile(r"(\d{4,})(\.template|\.report)?\.json")
# field -> the JSON types it may hold (bool is not an int here: `True` is no release number)
FIELDS: dict[str, tuple[type, ...]] = {
    "number": (int,),
    "kind": (str,),
    "time": (str,),
    "stage": (str,),
    "stack_name": (str,),
    "git_commit": (str,),
    "git_dirty": (bool,),
    "caller_account": (str,),
    "caller_arn": (str,),
    "layers": (dict,),
    "functions": (dict,),
    "template_sha256": (str,),
    "parameters": (dict,),
    "schema": (int,),
}
OPTIONAL: dict[str, tuple[type, ...]] = {"restores": (int, type(None)), "note": (str,)}


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
    layers: dict[str, dict[str, str]]  # layer folder -> {"logical_id", "arn", "sha256"}
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


def template_sha256(template: dict[str, Any]) -> str:
    """The digest a record keeps of its template (key order does not count)."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()


def _wrong_type(name: str, value: Any, types: tuple[type, ...]) -> str | None:
    if isinstance(value, bool) and bool not in types:
        return f"{name} is {value!r}, not a {' or '.join(t.__name__ for t in types)}"
    if not isinstance(value, types):
        wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        return f"{name} is {type(value).__name__} {json.dumps(value)[:40]}, not {wanted}"
    return None


def _nested_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    for folder, layer in data["layers"].items():
        if not isinstance(layer, dict) or not all(isinstance(layer.get(k), str) for k in ("arn", "sha256")):
            problems.append(f"layers.{folder} lacks its arn or sha256")
    for logical, function in data["functions"].items():
        if not isinstance(function, dict) or not isinstance(function.get("layers"), list):
            problems.append(f"functions.{logical} lacks its layers list")
        elif not isinstance(function.get("name"), str) or "version" not in function:
            problems.append(f"functions.{logical} lacks its name or version")
    if not re.fullmatch(r"[0-9a-f]{64}", data["template_sha256"]):
        problems.append("template_sha256 is not a sha256 digest")
    if data["kind"] not in KINDS:
        problems.append(f"kind is {data['kind']!r}, not one of {', '.join(KINDS)}")
    return problems


def record_problems(body: bytes, number: int, stack: str) -> list[str]:
    """Why the record stored under number `number` of `stack` cannot be used (empty: it can)."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [f"it is not JSON ({exc})"]
    if not isinstance(data, dict):
        return [f"it holds a JSON {type(data).__name__}, not an object"]
    schema = data.get("schema")
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA:
        return [f"it has schema {schema}, newer than this checkout reads ({SCHEMA}): update the checkout"]
    missing = [name for name in FIELDS if name not in data]
    problems = [f"it lacks {', '.join(missing)}"] if missing else []
    typed = {**FIELDS, **OPTIONAL}
    problems += [p for name, t in typed.items() if name in data and (p := _wrong_type(name, data[name], t))]
    if problems:
        return problems
    if data["number"] != number:
        problems.append(f"it says release {data['number']}, but its key says {number} (renumbered or copied)")
    if data["stack_name"] != stack:
        problems.append(f"it belongs to stack {data['stack_name']!r}, not {stack!r}")
    if data["schema"] != SCHEMA:
        problems.append(f"it has schema {data['schema']}, not {SCHEMA}")
    return problems + _nested_problems(data)


@dataclass(frozen=True)
class BadRecord:
    """A number the history has used but cannot give a release for."""

    number: int
    key: str
    problem: str  # what is wrong with the object, or why it is missing
    copy: Path | None = None  # this checkout's copy from its last good read, if any
    missing: bool = False  # no record object at all (else: one that cannot be used)

    def message(self, bucket: str) -> str:
        where = f"s3://{bucket}/{self.key}"
        if self.copy is not None:
            back = f"put back this checkout's copy from its last good read (`aws s3 cp {self.copy} {where}`)"
        else:
            back = (
                "put back an earlier version (the deployment bucket keeps them: "
                f"`aws s3api list-object-versions --bucket {bucket} --prefix {self.key}`)"
            )
        return f"Release {self.number}: {where} {self.problem}. Fix: {back}. The number {self.number} stays used."


@dataclass(frozen=True)
class History:
    """A stage's release history as read: the good records, oldest first, and every number used
    without one (a bad or missing record)."""

    releases: tuple[Release, ...]
    bad: tuple[BadRecord, ...] = ()
    bucket: str = ""

    @property
    def current(self) -> Release | None:
        return self.releases[-1] if self.releases else None

    @property
    def latest_number(self) -> int:
        return max([r.number for r in self.releases] + [b.number for b in self.bad], default=0)

    @property
    def next_number(self) -> int:
        """Never a number used before: not one of a bad record, nor one whose record is gone."""
        return self.latest_number + 1

    def problems(self) -> list[str]:
        return [bad.message(self.bucket) for bad in self.bad]

    def unknown_latest(self) -> BadRecord | None:
        """The bad or missing record when it is the newest number: what runs is then unknown."""
        latest = max(self.bad, key=lambda b: b.number, default=None)
        current = self.current.number if self.current else 0
        return latest if latest is not None and latest.number > current else None

    def bad_record(self, number: int) -> BadRecord | None:
        return next((b for b in self.bad if b.number == number), None)


def _number_of(prefix: str, key: str) -> int | None:
    found = RECORD_NAME.fullmatch(key.removeprefix(prefix))
    return int(found.group(1)) if found else None


def assemble_history(
    prefix: str, keys: list[str], bodies: dict[str, bytes], stack: str, bucket: str, copies: dict[int, Path]
) -> History:
    """The history from a listing of the stage's prefix and the bodies of its records: every
    record checked, every number some object or a later record uses but no good record holds
    named (deleted, renumbered, or claimed by a command that stopped before recording)."""
    used: set[int] = set()
    records: list[Release] = []
    bad: list[BadRecord] = []
    for key in keys:
        found = RECORD_NAME.fullmatch(key.removeprefix(prefix))
        if not found:
            continue
        number = int(found.group(1))
        used.add(number)
        if found.group(2) or key not in bodies:
            continue
        problems = record_problems(bodies[key], number, stack)
        if problems:
            bad.append(BadRecord(number, key, "cannot be used: " + "; ".join(problems), copies.get(number)))
        else:
            records.append(Release.from_json(json.loads(bodies[key])))
    known = {r.number for r in records} | {b.number for b in bad}
    for number in sorted(set(range(1, max(used, default=0) + 1)) - known):
        key = f"{prefix}{number:04d}.json"
        others = sorted(k for k in keys if _number_of(prefix, k) == number)
        why = (
            f"is missing, though {', '.join(others)} exist(s): the record was deleted, or the command that "
            "claimed the number stopped before recording it"
            if others
            else "is missing (a later release exists): the record was deleted or renumbered"
        )
        bad.append(BadRecord(number, key, why, copies.get(number), missing=True))
    records.sort(key=lambda r: r.number)
    bad.sort(key=lambda b: b.number)
    return History(tuple(records), tuple(bad), bucket)


# A restore's note lists every failed check with full ARNs (thousands of characters): the table
# shows its start, the record and `inv releases --json` keep it whole.
TABLE_NOTE_CHARS = 80


def table_note(note: str) -> str:
    """`note` as the table shows it: whole up to TABLE_NOTE_CHARS, else cut with an ellipsis."""
    return note if len(note) <= TABLE_NOTE_CHARS else note[: TABLE_NOTE_CHARS - 1] + "…"


def release_table(history: History) -> str:
    """The history as a table, oldest first; a bad or missing record is a row of its own, and
    what is wrong with it and the fix follow the table."""
    header = ("release", "kind", "time (UTC)", "commit", "layers", "note")
    rows: list[tuple[int, tuple[str, ...]]] = []
    for release in history.releases:
        commit = release.git_commit[:10] + ("+dirty" if release.git_dirty else "")
        layers = ", ".join(
            f"{folder}:{info['arn'].rsplit(':', 1)[-1]}" for folder, info in sorted(release.layers.items())
        )
        kind = f"{release.kind} of {release.restores}" if release.restores else release.kind
        rows.append(
            (release.number, (str(release.number), kind, release.time, commit, layers, table_note(release.note)))
        )
    for bad in history.bad:
        state = "MISSING" if bad.missing else "UNREADABLE"
        rows.append((bad.number, (str(bad.number), state, "", "", "", "see below")))
    cells = [cells for _, cells in sorted(rows)]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *cells]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if any(len(release.note) > TABLE_NOTE_CHARS for release in history.releases):
        lines.append(f"(notes cut at {TABLE_NOTE_CHARS} characters: `--json` shows them whole)")
    unknown = history.unknown_latest()
    if unknown is None and history.current is not None:
        lines.append(f"current: release {history.current.number}")
    else:
        good = f"the newest good record is release {history.current.number}" if history.current else "no good record"
        lines.append(f"current: unknown (release {unknown.number if unknown else '?'} has no good record; {good})")
    lines.extend(history.problems())
    return "\n".join(lines)


def refuse_unknown_latest(history: History, stage: str) -> None:
    """A deploy needs to know what the stage runs, to put it back when the deploy fails."""
    unknown = history.unknown_latest()
    if unknown is None:
        return
    back = (
        f"or return the stage to a release you trust with `inv rollback --stage {stage} --to "
        f"{history.current.number}` (recorded as release {history.next_number}), then deploy"
        if history.current
        else f"or, if none of its releases is worth keeping, remove s3://{history.bucket}/"
        f"{unknown.key.rsplit('/', 1)[0]}/ on purpose (numbering then starts again at 1)"
    )
    raise ReleaseError(
        f"Stage {stage!r}: its newest release number, {unknown.number}, has no good record, so what the stage "
        f"runs is unknown and a failed deploy could not be put back.\n{unknown.message(history.bucket)}\n"
        f"To go on without that record: {back}. Nothing was uploaded."
    )
