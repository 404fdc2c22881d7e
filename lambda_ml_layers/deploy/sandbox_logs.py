"""Lambda's log lines for a sandbox run of deployed code, written where Lambda writes them.

On AWS, Lambda itself writes START, END and REPORT lines into /aws/lambda/<function name>,
one log stream per execution environment named `YYYY/MM/DD/[<version>]<id>`. The local stage
runs deployed code in the project's sandbox instead (smoke.py), so this module writes the same
lines (and what the function printed) into the emulator's log group; `inv cold-starts` then
reads the local stage exactly as it reads AWS.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from ..local.sandbox import Invocation


def log_group_name(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def log_stream_name(version: str, epoch_seconds: float, environment_id: str) -> str:
    """Lambda's stream name: the date, the function version in brackets, the environment's id."""
    return time.strftime("%Y/%m/%d/", time.gmtime(epoch_seconds)) + f"[{version}]{environment_id}"


def report_line(request_id: str, invocation: Invocation, memory_mb: int) -> str:
    """The REPORT line Lambda writes after an invocation; Init Duration only for a cold start."""
    duration_ms = invocation.duration_seconds * 1000
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max(1, round(invocation.max_memory_mb))} MB",
    ]
    if invocation.cold and invocation.init_seconds is not None:
        fields.append(f"Init Duration: {invocation.init_seconds * 1000:.2f} ms")
    return "\t".join(fields) + "\t"


def invocation_lines(request_id: str, version: str, invocation: Invocation, memory_mb: int) -> list[str]:
    """START, the function's own output, END and REPORT, as Lambda writes them."""
    printed = [line for line in invocation.logs.splitlines() if line.strip()]
    return [
        f"START RequestId: {request_id} Version: {version}",
        *printed,
        f"END RequestId: {request_id}",
        report_line(request_id, invocation, memory_mb),
    ]


def write_invocation_logs(
    logs_client: Any, function_name: str, version: str, memory_mb: int, invocation: Invocation
) -> str:
    """Write one invocation's lines into the function's log group (made if missing, as Lambda
    does); a new stream, since every sandbox is a new execution environment. Returns the stream."""
    group = log_group_name(function_name)
    now = time.time()
    stream = log_stream_name(version, now, uuid.uuid4().hex)
    try:
        logs_client.create_log_group(logGroupName=group)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
            raise
    logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
    stamp = int(now * 1000)
    lines = invocation_lines(str(uuid.uuid4()), version, invocation, memory_mb)
    logs_client.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": stamp, "message": line} for line in lines],
    )
    return stream
