"""The local stage's AWS: one long-lived, patched moto server per checkout, its endpoint in
build/local-aws.json, so deploys, rollbacks and `inv releases` of the local stage see one state.

The file also records the server's identity (pid, command line, start time and boot): a pid is
signalled only while /proc shows that same process, never whatever process reuses the number. A
server that holds its port but does not answer (paused with SIGSTOP, hung) is reported with its pid
and what to do; no second server is started beside it, over the state it holds.

$LAMBDA_ML_LAYERS_LOCAL_AWS (an endpoint URL) points the local stage at another emulator
instead, for example the one a test started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from ..core.errors import LayerToolError, LocalAWSError
from ..core.paths import BuildPaths
from ..local.moto_server import probe, reachable, start_moto_server
from ..local.process_identity import PROC, ProcessIdentity, boot_id, process_identity

ENDPOINT_VARIABLE = "LAMBDA_ML_LAYERS_LOCAL_AWS"
STOP_WAIT_SECONDS = 10.0
# A busy server (a deploy of the other terminal) can take a while to answer; a paused one never does.
PATIENT_PROBE_SECONDS = 10.0


def _read_state(paths: BuildPaths) -> dict[str, object] | None:
    try:
        data = json.loads(paths.local_aws_state.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _write_state(paths: BuildPaths, state: dict[str, object]) -> None:
    paths.local_aws_state.parent.mkdir(parents=True, exist_ok=True)
    partial = paths.local_aws_state.with_suffix(".json.partial")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    partial.replace(paths.local_aws_state)


def start_emulator(paths: BuildPaths, timeout: float = 60.0) -> str:
    """Start a patched moto server that outlives this process; return its endpoint."""
    log_path = paths.logs / "local-aws.log"
    server = start_moto_server(timeout=timeout, log_path=log_path, detach=True)
    pid = server.process.pid
    identity = process_identity(pid)
    state: dict[str, object] = {"endpoint_url": server.endpoint_url, "pid": pid, "log": str(log_path)}
    if identity is not None:
        state.update(command=list(identity.command), start_ticks=identity.start_ticks, boot_id=identity.boot_id)
    _write_state(paths, state)
    return server.endpoint_url


# "emulator": the recorded process itself; "unverified": a live pid, but no identity recorded to compare.
RecordedStatus = Literal["emulator", "ended", "reused", "unverified", "no pid"]


@dataclass(frozen=True)
class Recorded:
    """What the pid of build/local-aws.json is now."""

    status: RecordedStatus
    process: ProcessIdentity | None  # the process that has the pid now
    said: str  # the same, in words


def recorded_process(state: dict[str, object]) -> Recorded:
    pid = state.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return Recorded("no pid", None, f"it names no pid ({pid!r})")
    if not PROC.is_dir():
        return Recorded(
            "unverified",
            None,
            f"this system has no {PROC} to prove that pid {pid} is still the emulator (`kill {pid}` ends it if it is)",
        )
    running = process_identity(pid)
    if running is None:
        return Recorded("ended", None, f"pid {pid} has ended")
    if "start_ticks" not in state:
        return Recorded(
            "unverified",
            running,
            f"it does not record the emulator's command line and start time, and pid {pid} runs `{running.shown}`",
        )
    if not running.same_process(state.get("command"), state.get("start_ticks"), state.get("boot_id")):
        return Recorded("reused", running, f"pid {pid} is now another process (`{running.shown}`)")
    return Recorded("emulator", running, f"pid {pid}")


def _not_answering(paths: BuildPaths, running: ProcessIdentity, endpoint: object) -> LocalAWSError:
    stop = "`inv local-aws --stop` ends it (the local stage's state goes with it; the next deploy starts afresh)"
    if running.stopped:
        return LocalAWSError(
            f"The local AWS emulator (pid {running.pid}, {endpoint}, {paths.local_aws_state}) is paused: it was "
            f"stopped by a signal (SIGSTOP or Ctrl-Z) and answers nothing. No second emulator was started beside it, "
            f"since the local stage's state is in it. Fix: `kill -CONT {running.pid}` resumes it with the stage "
            f"intact, or {stop}."
        )
    return LocalAWSError(
        f"The local AWS emulator (pid {running.pid}, {endpoint}, {paths.local_aws_state}) runs but does not answer "
        f"within {PATIENT_PROBE_SECONDS:.0f}s: busy or hung. No second emulator was started beside it, since the "
        f"local stage's state is in it. Fix: wait and run again (its log: {paths.logs / 'local-aws.log'}), "
        f"or {stop}."
    )


def emulator_endpoint(paths: BuildPaths, start: bool, say: Callable[[str], None], needed_by: str | None = None) -> str:
    """The local stage's endpoint: $LAMBDA_ML_LAYERS_LOCAL_AWS, else the running emulator of
    build/local-aws.json, else (when `start`) a new one. `needed_by` names the command and stage
    in the refusal when there is none."""
    configured = os.environ.get(ENDPOINT_VARIABLE)
    if configured:
        if not reachable(configured):
            raise LocalAWSError(
                f"The local AWS emulator at {configured} (from ${ENDPOINT_VARIABLE}) does not answer. "
                f"Fix: start it, or unset {ENDPOINT_VARIABLE} to use the checkout's own (`inv local-aws`)."
            )
        return configured
    state = _read_state(paths)
    endpoint = state.get("endpoint_url") if state else None
    if isinstance(endpoint, str) and reachable(endpoint):
        return endpoint
    recorded = recorded_process(state) if state else None
    if recorded and recorded.process is not None:
        if recorded.status == "emulator":
            running = recorded.process
            if isinstance(endpoint, str) and not running.stopped and reachable(endpoint, PATIENT_PROBE_SECONDS):
                return endpoint
            raise _not_answering(paths, running, endpoint)
        if recorded.status == "unverified":
            # Perhaps an emulator started before identities were recorded: never start a second over it.
            raise LocalAWSError(
                f"{paths.local_aws_state} names an emulator that does not answer at {endpoint}, but {recorded.said}. "
                f"Fix: if that is the emulator, end it (`kill {recorded.process.pid}`); then delete "
                f"{paths.local_aws_state} and run again."
            )
    if not start:
        if recorded is None:
            raise LocalAWSError(
                f"No local AWS emulator is running ({paths.local_aws_state} names none that answers), so "
                f"{needed_by or 'the local stage'} has nothing to read. Fix: `inv local-aws` starts one "
                "(`inv deploy --stage local` also starts one)."
            )
        # The stage lived in that emulator: say so, rather than read an empty new one as "no releases".
        raise LocalAWSError(
            f"The local AWS emulator of {paths.local_aws_state} is gone ({recorded.said}), and with it the "
            f"local stage's stack and release history, so {needed_by or 'this command'} has nothing to read. "
            f"Fix: see why in its log ({state.get('log') if state else paths.logs / 'local-aws.log'}); then "
            "`inv deploy --stage local` starts a new, empty emulator and deploys release 1."
        )
    if recorded:
        say(
            f"The emulator in {paths.local_aws_state} is gone ({recorded.said}), and with it the local stage; "
            "starting a new, empty one."
        )
    endpoint = start_emulator(paths)
    say(f"Local AWS emulator started at {endpoint} (stop it with `inv local-aws --stop`).")
    return endpoint


def _signal(running: ProcessIdentity, signum: signal.Signals) -> None:
    """`signum` to the emulator and the process group it leads (it was started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if running.group == running.pid:
            os.killpg(running.pid, signum)
        else:
            os.kill(running.pid, signum)


def _wait_gone(running: ProcessIdentity, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = process_identity(running.pid)
        if now is None or now.start_ticks != running.start_ticks:
            return True
        time.sleep(0.1)
    return False


def stop_emulator(paths: BuildPaths) -> str:
    """Stop the emulator of build/local-aws.json: only the process recorded there, checked first."""
    state = _read_state(paths)
    if not state:
        return "No local AWS emulator was running."
    recorded = recorded_process(state)
    running = recorded.process
    if recorded.status != "emulator" or running is None:
        paths.local_aws_state.unlink(missing_ok=True)
        alone = "; that process was left alone" if running is not None else ""
        return (
            f"No process was signalled: {paths.local_aws_state} named an emulator at {state.get('endpoint_url')}, "
            f"but {recorded.said}{alone}. The file was removed."
        )
    _signal(running, signal.SIGTERM)
    _signal(running, signal.SIGCONT)  # a paused server must run to act on the SIGTERM
    if not _wait_gone(running, STOP_WAIT_SECONDS):
        again = process_identity(running.pid)
        if again is not None and again.same_process(list(running.command), running.start_ticks, boot_id()):
            _signal(running, signal.SIGKILL)
            _wait_gone(running, STOP_WAIT_SECONDS)
    paths.local_aws_state.unlink(missing_ok=True)
    return (
        f"Stopped the local AWS emulator at {state.get('endpoint_url')} (pid {running.pid}); "
        "the local stage's state is gone with it."
    )


def emulator_failure(paths: BuildPaths, endpoint: str, command: str) -> str | None:
    """After a failed command on an emulated stage: why, if the emulator at `endpoint` is the cause
    (it died, or is paused or hung); None when it still answers, so the failure is the command's own."""
    answer = probe(endpoint, PATIENT_PROBE_SECONDS)
    if answer == "answers":
        return None
    state = _read_state(paths) or {}
    log = state.get("log") or paths.logs / "local-aws.log"
    if state.get("endpoint_url") == endpoint:
        recorded = recorded_process(state)
        if recorded.status == "emulator" and recorded.process is not None:
            return f"`{command}` stopped: {_not_answering(paths, recorded.process, endpoint)}"
        where = f"{endpoint}, {recorded.said}"
    else:
        where = f"{endpoint}, from ${ENDPOINT_VARIABLE}" if os.environ.get(ENDPOINT_VARIABLE) else endpoint
    if answer == "silent":
        return (
            f"`{command}` stopped: the local emulator stopped answering ({where}). Fix: check it (its log: {log}); "
            "`inv local-aws --stop`, then run the command again on a new, empty emulator."
        )
    return (
        f"`{command}` stopped: the local emulator died ({where}), and the local stage's state (stack, layers, "
        f"release history) died with it. Fix: see why in its log ({log}); then `inv deploy --stage local` starts a "
        "new, empty emulator and deploys release 1."
    )


def dead_emulator(paths: BuildPaths, endpoint: str | None, command: str) -> LocalAWSError | None:
    """The error for a failed `command` whose emulated stage's emulator (at `endpoint`) died or
    stopped answering; None for a real stage or a live emulator (the failure is the command's own)."""
    died = emulator_failure(paths, endpoint, command) if endpoint else None
    return LocalAWSError(died) if died else None


@contextmanager
def emulator_guard(paths: BuildPaths, endpoint: str | None, command: str) -> Iterator[None]:
    """Any failure of the block on an emulated stage whose emulator died: exit 8 naming the stage
    and the fix, never a connection error's traceback or another command's exit code."""
    try:
        yield
    except (ClientError, BotoCoreError, LayerToolError) as exc:
        if isinstance(exc, LocalAWSError):
            raise
        died = dead_emulator(paths, endpoint, command)
        if died is not None:
            raise died from None
        raise
