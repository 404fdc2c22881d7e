"""`inv run-pipeline --stage STAGE [--batch FILE]`: the deployed pipeline on one upload, as on AWS.

The file is uploaded to the stage's data bucket under incoming/; what starts the execution is the
stage's own wiring (S3 -> EventBridge -> the template's rule -> the state machine; on the local
stage the emulator delivers it, local_aws_fixes/event_delivery.py). While it runs, each state
entered, left or failed is printed from GetExecutionHistory; at the end, each function's peak
memory and durations from the REPORT lines Lambda wrote (the sandbox's own measurements on the
local stage: waiting for a free sandbox is not counted), the reason of a rejection read from the
validation report, and the batch's outputs downloaded to build/pipeline-runs/<batch>/.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from ..core.errors import StateMachineError
from ..core.paths import BuildPaths
from ..local.pipeline_progress import Execution, failure_line, follow, function_lines
from .deployed_state import read_stack
from .stage_session import StageSession

# S3 takes any UTF-8 key, but a newline or other odd character breaks the tools around it (the
# CLI's upload, log lines, URL-encoded event keys); these are the characters S3 calls safe.
SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
OUTPUT_PREFIXES = ("reports", "validated", "features", "predictions", "quarantine")


@dataclass(frozen=True)
class StageTargets:
    data_bucket: str
    state_machine_arn: str
    functions: dict[str, str]  # logical id -> function name


@dataclass(frozen=True)
class RunResult:
    status: str
    error: str | None
    cause: str | None
    lines: list[str]  # the summary printed at the end
    outputs_dir: Path | None


def upload_key(batch: Path) -> str:
    """incoming/<file name>, or a StateMachineError naming what is wrong with the name."""
    name = batch.name
    if not SAFE_NAME.fullmatch(name):
        odd = sorted({ch for ch in name if not SAFE_NAME.fullmatch(ch)})
        suggestion = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "batch.csv"
        raise StateMachineError(
            f"--batch {str(batch)!r}: the file name has characters the pipeline does not take in an S3 key "
            f"({', '.join(repr(ch) for ch in odd)}); only letters, digits, '.', '_' and '-' are. "
            f"Fix: rename or copy the file, e.g. to {suggestion!r}."
        )
    return f"incoming/{name}"


def stage_targets(session: StageSession) -> StageTargets:
    stack = read_stack(session)
    if stack.status == "DOES_NOT_EXIST":
        raise StateMachineError(
            f"Stage {session.stage.name!r} has no stack {session.stage.stack_name!r}. "
            f"Fix: inv deploy --stage {session.stage.name}."
        )
    by_type: dict[str, list[str]] = {}
    for kind, physical in stack.resources.values():
        by_type.setdefault(kind, []).append(physical)
    buckets = [b for b in by_type.get("AWS::S3::Bucket", []) if "data" in b]
    machines = by_type.get("AWS::StepFunctions::StateMachine", [])
    if len(buckets) != 1 or len(machines) != 1:
        raise StateMachineError(
            f"Stage {session.stage.name!r}: expected one data bucket and one state machine in the stack, "
            f"found buckets {buckets} and state machines {machines}. Fix: redeploy the stage."
        )
    functions = {logical_id: state.name for logical_id, state in stack.functions.items()}
    return StageTargets(buckets[0], machines[0], functions)


def started_execution(sfn: Any, machine_arn: str, bucket: str, key: str, since: float, wait_s: float = 60) -> str:
    """The execution the upload started (its input names the bucket and key)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        for execution in sfn.list_executions(stateMachineArn=machine_arn)["executions"]:
            if execution["startDate"].timestamp() < since - 1:
                continue
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if f'"{key}"' in described.get("input", "") and f'"{bucket}"' in described.get("input", ""):
                return str(execution["executionArn"])
        time.sleep(0.5)
    raise StateMachineError(
        f"No execution of {machine_arn} started within {wait_s:.0f} s of uploading s3://{bucket}/{key}: "
        "the bucket's EventBridge notification or the rule is missing. Fix: redeploy the stage."
    )


REPORT_KEY = re.compile(r"reports/(.+)/validation\.json")


def validation_output(execution: Execution) -> dict[str, Any] | None:
    """What Validate returned (the first task's Payload), if it returned."""
    for event in execution.events:
        if event["type"] == "TaskSucceeded":
            output = json.loads(event["taskSucceededEventDetails"].get("output") or "{}")
            payload = output.get("Payload") if isinstance(output, dict) else None
            return payload if isinstance(payload, dict) else None
    return None


def report_key(validated: dict[str, Any] | None) -> str | None:
    """The batch's validation report: named by a checked batch, inside the message of a refused one."""
    if validated is None:
        return None
    if validated.get("report_key"):
        return str(validated["report_key"])
    error = validated.get("error")
    found = REPORT_KEY.search(str(error.get("message", ""))) if isinstance(error, dict) else None
    return found[0] if found else None


def batch_of(key: str) -> str:
    """reports/<batch>/validation.json -> <batch>."""
    found = REPORT_KEY.fullmatch(key)
    return found[1] if found else key


def rejection_reason(s3: Any, bucket: str, validated: dict[str, Any] | None, cause: str | None) -> str:
    """Why the batch was rejected, from its validation report (the Fail state's Cause only points there)."""
    key = report_key(validated)
    error = (validated or {}).get("error")
    refused = str(error.get("message")) if isinstance(error, dict) else None
    if key is None:
        return refused or cause or "no reason recorded"
    try:
        report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, ValueError) as exc:
        return f"{refused or 'see the report'} (the report s3://{bucket}/{key} cannot be read: {exc})"
    reason = report.get("reason") or refused or "see the report"
    counts = f"rows {report['rows']}, invalid {report.get('invalid_rows')}; " if report.get("rows") is not None else ""
    return f"{reason} ({counts}report s3://{bucket}/{key}, downloaded below)"


def download_outputs(s3: Any, bucket: str, batch_id: str, destination: Path) -> list[Path]:
    saved = []
    for prefix in OUTPUT_PREFIXES:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/{batch_id}/"):
            for item in page.get("Contents", []):
                target = destination / item["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(target))
                saved.append(target)
    return saved


def run_on_stage(
    root: Path, session: StageSession, batch: Path, log: Callable[[str], None] = print, limit_s: float = 3600
) -> RunResult:
    if not batch.is_file():
        raise StateMachineError(f"--batch {batch}: no such file. Fix: give the path of a CSV file to upload.")
    key = upload_key(batch)
    targets = stage_targets(session)
    s3, sfn = session.client("s3"), session.client("stepfunctions")
    since = time.time()
    try:
        s3.upload_file(str(batch), targets.data_bucket, key)
    except (ClientError, BotoCoreError) as exc:
        raise StateMachineError(f"Uploading {batch} to s3://{targets.data_bucket}/{key} failed: {exc}") from None
    log(f"uploaded {batch} to s3://{targets.data_bucket}/{key}; waiting for the execution it starts")
    execution_arn = started_execution(sfn, targets.state_machine_arn, targets.data_bucket, key, since)
    log(f"execution {execution_arn}")
    execution = follow(sfn, execution_arn, log, limit_s)
    if execution is None:
        raise StateMachineError(
            f"{execution_arn} is still RUNNING after {limit_s:.0f} s; it goes on in the stage "
            "(aws stepfunctions describe-execution shows its end)."
        )
    validated = validation_output(execution)
    lines = function_lines(session.client("logs"), targets.functions, int(since * 1000))
    if execution.status == "SUCCEEDED":
        lines.append(f"SUCCEEDED in {execution.duration_s:.1f} s")
    elif execution.error == "BatchRejected":
        lines.append(f"REJECTED: {rejection_reason(s3, targets.data_bucket, validated, execution.cause)}")
    else:
        lines.append(failure_line(execution))
    outputs_dir = None
    key_of_report = report_key(validated)
    if key_of_report is not None:
        batch_id = batch_of(key_of_report)
        outputs_dir = BuildPaths.of(root).pipeline_run(batch_id)
        saved = download_outputs(s3, targets.data_bucket, batch_id, outputs_dir)
        lines.append(f"{len(saved)} output file(s) downloaded to {outputs_dir}")
    return RunResult(execution.status, execution.error, execution.cause, lines, outputs_dir)
