"""What `inv run-pipeline` prints, read the way one reads AWS: GetExecutionHistory for the states,
the REPORT lines Lambda writes for each function's durations and peak memory. Shared by the
quick local run (local/quick_pipeline.py) and the run on a deployed stage
(deploy/pipeline_run.py)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SHOWN = ("StateEntered", "StateExited", "Failed", "TimedOut", "Aborted", "Succeeded")
REPORT = re.compile(r"Duration: ([\d.]+) ms.*?Max Memory Used: (\d+) MB")


@dataclass(frozen=True)
class Execution:
    """A finished execution, as DescribeExecution tells it."""

    arn: str
    status: str
    output: Any  # parsed JSON, None unless SUCCEEDED
    error: str | None
    cause: str | None
    duration_s: float
    events: list[dict[str, Any]]  # GetExecutionHistory's, in order


def event_line(event: dict[str, Any], started: float) -> str | None:
    """One progress line for a history event worth showing (a state entered, left or failed)."""
    kind = str(event["type"])
    if not kind.endswith(SHOWN):
        return None
    at = event["timestamp"].timestamp() - started
    details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
    name = details.get("name", "")
    error = details.get("error")
    return f"{at:8.2f} s  {kind}{' ' + name if name else ''}{' ' + error if error else ''}"


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def follow(
    sfn: Any, execution_arn: str, log: Callable[[str], None], limit_s: float, poll_s: float = 0.3
) -> Execution | None:
    """Print each state as the execution goes; the finished execution, or None after `limit_s`."""
    shown = 0
    deadline = time.monotonic() + limit_s
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        events = history(sfn, execution_arn)
        started = described["startDate"].timestamp()
        for event in events[shown:]:
            if (line := event_line(event, started)) is not None:
                log(line)
        shown = len(events)
        if described["status"] != "RUNNING":
            output = described.get("output")
            return Execution(
                arn=execution_arn,
                status=str(described["status"]),
                output=json.loads(output) if output else None,
                error=described.get("error"),
                cause=described.get("cause"),
                duration_s=described["stopDate"].timestamp() - started,
                events=events,
            )
        if time.monotonic() > deadline:
            return None
        time.sleep(poll_s)


def report_figures(lines: list[str]) -> tuple[int, float, float, int]:
    """(invocations, longest and total Duration in ms, peak Max Memory Used MB) of REPORT lines."""
    found = [(float(m[1]), int(m[2])) for line in lines if (m := REPORT.search(line))]
    if not found:
        return 0, 0.0, 0.0, 0
    return len(found), max(d for d, _ in found), sum(d for d, _ in found), max(m for _, m in found)


def function_lines(logs: Any, functions: dict[str, str], since_ms: int) -> list[str]:
    """Per function (logical id -> deployed name): calls, longest and total duration, peak memory,
    from the REPORT lines in its log group since `since_ms`. Duration is the handler's own time
    (Lambda's; the local sandbox measures the same), not the wait for a free environment."""
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]

    lines = ["  function                       calls   longest      total  peak memory"]
    for logical_id, name in sorted(functions.items()):
        messages: list[str] = []
        try:
            paginator = logs.get_paginator("filter_log_events")
            for page in paginator.paginate(
                logGroupName=f"/aws/lambda/{name}", startTime=since_ms, filterPattern="REPORT"
            ):
                messages += [event["message"] for event in page["events"]]
        except ClientError:
            continue  # never invoked: no log group
        calls, longest, total, peak = report_figures(messages)
        if calls:
            lines.append(f"  {logical_id:<30} {calls:5d} {longest / 1000:7.2f} s {total / 1000:8.2f} s  {peak:6d} MB")
    return lines


def outcome_line(execution: Execution) -> str:
    if execution.status == "SUCCEEDED":
        return f"SUCCEEDED in {execution.duration_s:.1f} s: {json.dumps(execution.output)[:300]}"
    return failure_line(execution)


def failure_line(execution: Execution) -> str:
    """The end of a failed execution in words: a timeout named as such, else error and cause."""
    if execution.error == "Sandbox.Timedout":
        try:
            message = json.loads(execution.cause or "{}").get("errorMessage", execution.cause)
        except ValueError:
            message = execution.cause
        return (
            f"FAILED in {execution.duration_s:.1f} s: a function timed out ({message}). "
            "Fix: raise its Timeout in infra/template.yaml, or give it less to do."
        )
    return f"{execution.status} in {execution.duration_s:.1f} s: {execution.error}: {(execution.cause or '')[:500]}"
