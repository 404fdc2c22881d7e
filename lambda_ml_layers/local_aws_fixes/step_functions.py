"""Step Functions executes state machines with moto's own interpreter, as AWS would run them.

moto 5.2.5 ships an Amazon States Language interpreter (`moto/stepfunctions/parser`, off unless
the `stepfunctions: execute_state_machine` config is set; stock StartExecution only records an
execution that never runs a state). This module turns it on in the patched server and closes the
three gaps found running the template's state machine on it (each has a strict-xfail test on
stock moto in tests/integration/test_local_aws_step_functions.py):

12. Interpreter on. Stock: StartExecution runs nothing. Patch: `execute_state_machine` is set
    before the server serves (a stock server can be switched the same way with a POST of
    `{"stepfunctions": {"execute_state_machine": true}}` to /moto-api/config).
13. Where a stack's state machine lives. Stock: CloudFormation creates it in
    `stepfunctions_backends` while the API, with the interpreter on, reads
    `stepfunctions_parser_backends`: StartExecution on the deployed ARN is StateMachineDoesNotExist.
    Patch: resources/state_machines.py creates, updates and deletes it in `backend()`, the one the
    API reads.
14. Retry waits. Stock: a Retry's wait (IntervalSeconds, BackoffRate, MaxDelaySeconds, jitter) is
    a real `time.sleep`: the template's `IntervalSeconds: 2, BackoffRate: 2` retries cost seconds
    per failure in every local run and test. Patch: the wait is computed exactly as before and
    slept scaled by `$LOCAL_AWS_WAIT_SCALE` (default 0.01: 2 s take 20 ms; `1` sleeps the real
    time). Attempts, their order and the history are unchanged; only wall time shrinks.
15. Where the interpreter calls Lambda. Stock: its boto3 clients use `localhost:$MOTO_PORT`;
    moto_server sets MOTO_PORT to its own port only when the variable is unset, so a server that
    inherits one (a shell with MOTO_PORT=5000, moto's default, or a parent that set it) sends
    every Lambda task to that other port (a connection error, or another server's functions).
    Patch: `serve_on(argv)` sets MOTO_PORT to the server's own `-p`/`--port` before it serves.
    Also, found on the way: with the interpreter on, StartExecution without a `name` names the
    execution "None" (ARN `...:execution:<machine>:None`), so a second unnamed start is
    ExecutionAlreadyExists; AWS names it with a new UUID. Patch: a missing name is a UUID4.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from typing import Any

WAIT_SCALE_ENV = "LOCAL_AWS_WAIT_SCALE"
DEFAULT_WAIT_SCALE = 0.01


def backend(account_id: str, region: str) -> Any:
    """The Step Functions backend the API reads (the interpreter's, when it is on)."""
    from moto.stepfunctions.responses import get_backend

    return get_backend(account_id, region)


def wait_scale(environ: dict[str, str] | os._Environ[str] = os.environ) -> float:
    """The factor retry waits are slept with; a bad value falls back to the default (the server
    has no user to tell, and a wrong wait changes no result)."""
    try:
        scale = float(environ.get(WAIT_SCALE_ENV, DEFAULT_WAIT_SCALE))
    except ValueError:
        return DEFAULT_WAIT_SCALE
    return scale if scale >= 0 else DEFAULT_WAIT_SCALE


class _ScaledClock:
    """Stands in for the `time` module inside moto's retrier: only `sleep` differs."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds * wait_scale())


def server_port(argv: list[str]) -> str | None:
    """The port moto_server's options name (`-p`/`--port`), or None for its default."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-p", "--port")
    known, _ = parser.parse_known_args(argv)
    return str(known.port) if known.port else None


def serve_on(argv: list[str]) -> None:
    """Point the interpreter's own clients at this server (patch 15)."""
    port = server_port(argv)
    if port is not None:
        os.environ["MOTO_PORT"] = port


def apply() -> None:
    from moto.core.config import default_user_config
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    default_user_config["stepfunctions"]["execute_state_machine"] = True
    start_execution = StepFunctionsParserBackend.start_execution

    def start_named(self: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        return start_execution(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    StepFunctionsParserBackend.start_execution = start_named  # type: ignore[method-assign]
    retrier_decl.time = _ScaledClock()  # type: ignore[attr-defined,assignment]
