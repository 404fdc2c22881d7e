"""A real moto server on a free localhost port: the local AWS endpoint for tests and deploys.

Standard library only, so it is importable from any interpreter the project uses (the
python3.12 handler-test venv has no moto; it runs the tooling venv's python).

    with moto_server() as server:
        os.environ["AWS_ENDPOINT_URL"] = server.endpoint_url   # http://localhost:PORT

By default the server is moto patched by `lambda_ml_layers.local_aws_fixes` (SAM transform,
outputs, change detection and rollback as CloudFormation does them), run by the tooling python
(`$MOTO_PYTHON`, else `.venv/bin/python`); `moto_server(stock=True)` runs plain `moto_server`.

The endpoint is `localhost`, never 127.0.0.1: with an IP host moto reads the host of
CloudFormation template URLs as a bucket name (DESIGN.md section 3).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..core.errors import LocalAWSError

ROOT = Path(__file__).resolve().parents[2]
HOST = "localhost"
# Credentials that can never reach a real account; moto accepts any.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
FIXES_MODULE = "lambda_ml_layers.local_aws_fixes"
STOP_SECONDS = 180
# Read by the patched server (local_aws_fixes/lambda_sandboxes.py): Lambda sandboxes per function at once.
SANDBOXES_ENV = "LOCAL_AWS_SANDBOXES"


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    own_log: bool = True  # a temporary log, removed on stop (not a caller's log file)

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def client_env(self) -> dict[str, str]:
        """Environment for a client (boto3, sam, a handler) that must talk only to this server."""
        return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self, service: str) -> Any:
        """A boto3 client of this server, whatever the environment says (boto3 imported lazily:
        this module stays standard-library only)."""
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
        )

    def reset(self) -> None:
        """Forget every resource (moto's own reset endpoint), keeping the process."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                # On SIGTERM the patched server stops its Lambda sandboxes and deletes their
                # extracted layers (hundreds of MB each; over a minute on a loaded 2-core machine):
                # killed sooner, it would leave them in the temporary folder.
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.own_log:
            self.log_path.unlink(missing_ok=True)


def find_moto_server() -> Path:
    """MOTO_SERVER, else the tooling venv's moto_server, else one on PATH."""
    candidates = [
        os.environ.get("MOTO_SERVER"),
        str(ROOT / ".venv" / "bin" / "moto_server"),
        shutil.which("moto_server"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise LocalAWSError(
        "moto_server was not found (looked at $MOTO_SERVER, .venv/bin/moto_server and PATH). "
        "Fix: set up the tooling venv (it installs moto[server] from requirements/dev.txt) "
        "or point MOTO_SERVER at a moto_server executable."
    )


def find_tooling_python() -> Path:
    """MOTO_PYTHON, else the tooling venv's python: the interpreter that runs the patched server."""
    configured = os.environ.get("MOTO_PYTHON")
    candidate = Path(configured) if configured else ROOT / ".venv" / "bin" / "python"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    looked_at = f"$MOTO_PYTHON ({configured})" if configured else ".venv/bin/python ($MOTO_PYTHON is not set)"
    raise LocalAWSError(
        f"The python for the patched moto server was not found: looked at {looked_at}. "
        "Fix: set up the tooling venv (it installs moto[server] and aws-sam-translator from "
        "requirements/dev.txt), or point MOTO_PYTHON at a python that has them; "
        "moto_server(stock=True) runs plain moto_server instead."
    )


def server_command(executable: Path | None, port: int, stock: bool) -> list[str]:
    """The command line of a server on `port`: `executable` (a moto_server-like program) if given,
    else plain moto_server if `stock`, else the tooling python running the patched server."""
    options = ["-H", HOST, "-p", str(port)]
    if executable is not None:
        return [str(executable), *options]
    if stock:
        return [str(find_moto_server()), *options]
    return [str(find_tooling_python()), "-m", FIXES_MODULE, *options]


def server_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ours, a region (the SAM translator needs one) and the engine
    importable from the source tree, whatever the current directory; then `extra` (settings of
    local_aws_fixes, e.g. LOCAL_AWS_SANDBOXES)."""
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "AWS_DEFAULT_REGION": DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
        "PYTHONPATH": pythonpath,
        **(extra or {}),
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def probe(endpoint_url: str, timeout: float = 2.0) -> str:
    """ "answers" (a moto server's small dashboard page; data.json would serialise everything the
    server holds, every stored zip included), "refused" (nothing listens there: no server) or
    "silent" (something holds the port but does not answer in time: paused, hung or busy)."""
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=timeout):
            return "answers"
    except urllib.error.URLError as exc:
        return "refused" if isinstance(exc.reason, ConnectionRefusedError) else "silent"
    except ConnectionRefusedError:
        return "refused"
    except (ConnectionError, TimeoutError, ValueError, OSError):
        return "silent"


def reachable(endpoint_url: str, timeout: float = 2.0) -> bool:
    """Whether a moto server answers at `endpoint_url`."""
    return probe(endpoint_url, timeout) == "answers"


def start_moto_server(
    executable: Path | None = None,
    timeout: float = 30.0,
    *,
    stock: bool = False,
    log_path: Path | None = None,
    detach: bool = False,
    environment: dict[str, str] | None = None,
) -> MotoServer:
    """Start a moto server on a free port and wait until it answers HTTP: the patched one
    (`local_aws_fixes`) unless `stock` or an `executable` (run like moto_server) is given.
    `log_path` appends its output there (else a temporary file); `detach` puts it in its own
    session, so a Ctrl-C in the terminal does not stop it; `environment` is added to the server's."""
    server_command(executable, 0, stock)  # a missing interpreter or program fails here, once
    last_error: Exception | str | None = None
    for _attempt in range(3):  # another process can take the port between probe and bind
        port = free_port()
        log: IO[bytes]
        if log_path is None:
            log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)  # noqa: SIM115
        else:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = log_path.open("ab")
        # Not command_runner.call: the server keeps running, serving requests, until stop() ends it.
        process = subprocess.Popen(
            server_command(executable, port, stock),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env=server_environment(environment),
            start_new_session=detach,
        )
        log.close()
        server = MotoServer(process, port, Path(log.name), own_log=log_path is None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                last_error = LocalAWSError(
                    f"moto_server exited with {process.returncode} on port {port}:\n"
                    f"{server.log_path.read_text(errors='replace')[-2000:]}"
                )
                break
            if reachable(server.endpoint_url):
                return server
            last_error = f"no answer on {server.endpoint_url}"
            time.sleep(0.1)
        else:
            server.stop()
            raise LocalAWSError(
                f"moto_server did not answer on {server.endpoint_url} within {timeout:.0f}s; see {server.log_path}"
            )
        server.stop()
    raise LocalAWSError(f"moto_server could not be started: {last_error}")


@contextlib.contextmanager
def moto_server(
    executable: Path | None = None, *, stock: bool = False, environment: dict[str, str] | None = None
) -> Iterator[MotoServer]:
    server = start_moto_server(executable, stock=stock, environment=environment)
    try:
        yield server
    finally:
        server.stop()
