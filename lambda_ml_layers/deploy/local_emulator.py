"""The local stage's AWS: one long-lived, patched moto server per checkout, its endpoint in
build/local-aws.json, so deploys, rollbacks and `inv releases` of the local stage see one state.

$LAMBDA_ML_LAYERS_LOCAL_AWS (an endpoint URL) points the local stage at another emulator
instead, for example the one a test started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from ..core.errors import LocalAWSError
from ..core.paths import BuildPaths
from ..local.moto_server import reachable, start_moto_server

ENDPOINT_VARIABLE = "LAMBDA_ML_LAYERS_LOCAL_AWS"


def _read_state(paths: BuildPaths) -> dict[str, object] | None:
    try:
        data = json.loads(paths.local_aws_state.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
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
    _write_state(paths, {"endpoint_url": server.endpoint_url, "pid": server.process.pid, "log": str(log_path)})
    return server.endpoint_url


def emulator_endpoint(paths: BuildPaths, start: bool, say: Callable[[str], None]) -> str:
    """The local stage's endpoint: $LAMBDA_ML_LAYERS_LOCAL_AWS, else the running emulator of
    build/local-aws.json, else (when `start`) a new one."""
    configured = os.environ.get(ENDPOINT_VARIABLE)
    if configured:
        if not reachable(configured):
            raise LocalAWSError(
                f"The local AWS emulator at {configured} (from ${ENDPOINT_VARIABLE}) does not answer. "
                f"Fix: start it, or unset {ENDPOINT_VARIABLE} to use the checkout's own (`inv local-aws`)."
            )
        return configured
    state = _read_state(paths)
    if state and isinstance(state.get("endpoint_url"), str) and reachable(str(state["endpoint_url"])):
        return str(state["endpoint_url"])
    if not start:
        raise LocalAWSError(
            f"No local AWS emulator is running ({paths.local_aws_state} names none that answers). "
            "Fix: `inv local-aws` starts one (a deploy to the local stage also starts one)."
        )
    if state:
        say(f"The emulator in {paths.local_aws_state} is gone, and with it the local stage; starting a new, empty one.")
    endpoint = start_emulator(paths)
    say(f"Local AWS emulator started at {endpoint} (stop it with `inv local-aws --stop`).")
    return endpoint


def stop_emulator(paths: BuildPaths) -> str:
    state = _read_state(paths)
    if not state:
        return "No local AWS emulator was running."
    pid = state.get("pid")
    if isinstance(pid, int):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
    paths.local_aws_state.unlink(missing_ok=True)
    return f"Stopped the local AWS emulator at {state.get('endpoint_url')}; the local stage's state is gone with it."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False
