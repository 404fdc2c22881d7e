"""Lambda's log lines for a sandbox run of deployed code, written where Lambda writes them.

On AWS, Lambda itself writes START, END and REPORT lines into /aws/lambda/<function name>,
one log stream per execution environment named `YYYY/MM/DD/[<version>]<id>`. The local stage
runs deployed code in the project's sandbox instead (smoke.py), so this module writes the same
lines (and what the function printed; the sandbox makes them from its own measurements) into the
emulator's log group; `inv cold-starts` then
reads the local stage exactly as it reads AWS.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from ..local.sandbox import Invocation, log_lines


def log_group_name(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def log_stream_name(version: str, epoch_seconds: float, environment_id: str) -> str:
    """Lambda's stream name: the date, the function version in brackets, the environment's id."""
    return time.strftime("%Y/%m/%d/", time.gmtime(epoch_seconds)) + f"[{version}]{environment_id}"


def write_invocation_logs(logs_client: Any, function_name: str, version: str, invocation: Invocation) -> str:
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
    lines = log_lines(invocation, version)
    logs_client.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": stamp, "message": line} for line in lines],
    )
    return stream
