"""16. Invoke runs the deployed code and layers, in the project's sandbox.

Stock: every invoke path (the Lambda API, and Step Functions' Lambda tasks through it) ends in
`LambdaFunction._invoke_lambda`, which needs Docker (absent here); `lambda.use_docker = False`
only echoes canned answers. AWS: the function's deployed zip and layers run in an execution
environment kept warm between invocations; its lines (START, what it printed, END, REPORT) go to
/aws/lambda/<function name>, one stream per environment.
Patch: `_invoke_lambda` runs the function's stored code and layer zips (what was deployed, not the
source tree) in a `LambdaSandbox` (local/sandbox.py) of its runtime and architecture (an arm64 function's
interpreter runs under qemu, local/sandbox.py's target_interpreter), with its configured memory,
timeout and variables, plus this server as the endpoint. Sandboxes are reused warm per function
configuration; at most `$LOCAL_AWS_SANDBOXES` (default 1) exist per function and further
invocations wait for one, as reserved concurrency would throttle. A function error or timeout is
its error document with FunctionError set, as AWS answers. The lines Lambda writes are written
(local/sandbox.py's log_lines) into the function's log group, so REPORT's Duration and Max
Memory Used are the sandbox's own measurements, without the wait for a free sandbox.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.template import FunctionSpec
from ..core.runtimes import ARCHES, RUNTIMES
from ..deploy.sandbox_logs import log_stream_name
from ..local.moto_server import DUMMY_CREDENTIALS, SANDBOXES_ENV
from ..local.sandbox import Invocation, LambdaSandbox, log_lines, target_interpreter


def sandboxes_per_function(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    try:
        return max(1, int(environ.get(SANDBOXES_ENV, "1")))
    except ValueError:
        return 1


def failure_document(invocation: Invocation) -> dict[str, Any]:
    """What Lambda returns as the payload of a failed invocation."""
    error = dict(invocation.error or {})
    error.setdefault("errorType", "Runtime.Unknown")
    error.setdefault("errorMessage", "")
    return error


@dataclass
class _Environment:
    sandbox: LambdaSandbox
    stream: str


@dataclass
class _Pool:
    """The execution environments of one function configuration (code, layers, settings)."""

    spec: FunctionSpec
    layer_zips: list[Path]
    python: str
    runtime_name: str
    emulated: bool  # `python` runs under qemu (another architecture's interpreter)
    idle: list[_Environment] = field(default_factory=list)
    made: int = 0
    condition: threading.Condition = field(default_factory=threading.Condition)

    def acquire(self, environment: dict[str, str], version: str) -> _Environment:
        with self.condition:
            while not self.idle and self.made >= sandboxes_per_function():
                self.condition.wait()
            if self.idle:
                return self.idle.pop()
            self.made += 1
        try:
            sandbox = LambdaSandbox(
                self.spec,
                self.layer_zips,
                self.python,
                RUNTIMES[self.runtime_name],
                environment,
                workdir=_scratch / "environments" / uuid.uuid4().hex,
                emulated=self.emulated,
            )
            sandbox.__enter__()
        except BaseException:
            with self.condition:
                self.made -= 1
                self.condition.notify()
            raise
        return _Environment(sandbox, log_stream_name(version, time.time(), uuid.uuid4().hex))

    def release(self, environment: _Environment) -> None:
        with self.condition:
            self.idle.append(environment)
            self.condition.notify()

    def close(self) -> None:
        with self.condition:
            idle, self.idle = self.idle, []
        for environment in idle:
            environment.sandbox.__exit__(None, None, None)


# Every file of this server's sandboxes (code, layers, task/, opt/, tmp/) lives under one folder
# named by the server's pid: removed at exit, and by the next server if this one was killed first.
SCRATCH_PREFIX = "local-aws-lambda-"
_pools: dict[str, _Pool] = {}
_pools_lock = threading.Lock()
_scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))


def remove_tree(root: Path) -> None:
    """Delete a tree whose folders were made read-only (task/ and opt/, as Lambda has them):
    making the folders writable is enough to delete the files in them."""
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(temp_dir: Path) -> list[Path]:
    """Remove the scratch folders of servers that are gone (killed before their own cleanup)."""
    removed = []
    for folder in temp_dir.glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            remove_tree(folder)
            removed.append(folder)
    return removed


def _close_all() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()
    remove_tree(_scratch)


atexit.register(_close_all)


def _layer_bytes(function: Any, arn: str) -> bytes:
    from moto.awslambda.models import lambda_backends

    layer = lambda_backends[function.account_id][function.region].layers_versions_by_arn(arn)
    if layer is None:  # deleted since the function was configured: AWS keeps its copy, moto does not
        raise ValueError(f"layer version {arn} is gone")
    return bytes(layer.code_bytes)


def pool_key(function: Any) -> str:
    """Everything that makes an execution environment: a change of any of it is a new one."""
    shape = {
        "arn": function.function_arn,
        "version": str(function.version),
        "code": function.code_sha_256,
        "layers": [layer["Arn"] for layer in function.layers],
        "handler": function.handler,
        "runtime": function.run_time,
        "architectures": function.architectures,
        "memory": function.memory_size,
        "timeout": function.timeout,
        "variables": function.environment_vars,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


def _pool_for(function: Any) -> _Pool:
    key = pool_key(function)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is not None:
            return pool
        runtime = RUNTIMES.get(str(function.run_time))
        if runtime is None:
            raise ValueError(f"runtime {function.run_time!r} is not one the local sandbox runs ({', '.join(RUNTIMES)})")
        arch = str((function.architectures or ["x86_64"])[0])
        if arch not in ARCHES:
            raise ValueError(f"architecture {arch!r} is not one the local sandbox runs ({', '.join(ARCHES)})")
        python, emulated = target_interpreter(runtime, arch)
        folder = _scratch / key[:16]
        code_dir = folder / "code"
        with zipfile.ZipFile(_bytes_file(folder / "code.zip", function.code_bytes)) as archive:
            archive.extractall(code_dir)
        layer_zips = [
            _bytes_file(folder / f"layer-{index}.zip", _layer_bytes(function, layer["Arn"]))
            for index, layer in enumerate(function.layers)
        ]
        spec = FunctionSpec(
            name=function.function_name,
            code_dir=code_dir,
            handler=str(function.handler),
            runtime=runtime.name,
            arch=arch,
            layers=(),
            memory_mb=int(function.memory_size),
            timeout_s=int(function.timeout),
            environment={str(k): str(v) for k, v in (function.environment_vars or {}).items()},
        )
        pool = _Pool(spec, layer_zips, python, runtime.name, emulated)
        _pools[key] = pool
        return pool


def _bytes_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def server_environment() -> dict[str, str]:
    """This server as the function's AWS (the port the interpreter's clients use, patch 15)."""
    port = os.environ.get("MOTO_PORT", "5000")
    return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://localhost:{port}"}


def _write_lines(function: Any, stream: str, lines: list[str]) -> None:
    logs = function.logs_backend
    group = function.logs_group_name
    logs.ensure_log_group(group)
    if stream not in logs.groups[group].streams:
        logs.create_log_stream(group, stream)
    now = int(time.time() * 1000)
    logs.put_log_events(group, stream, [{"timestamp": now, "message": line} for line in lines])


def invoke(function: Any, event: Any) -> tuple[str, bool, str]:
    """moto's `_invoke_lambda` contract: (payload, errored, logs)."""
    if isinstance(event, str):
        event = json.loads(event) if event else {}
    pool = _pool_for(function)
    environment = pool.acquire(server_environment(), str(function.version))
    try:
        invocation = environment.sandbox.invoke(event)
    finally:
        pool.release(environment)
    _write_lines(function, environment.stream, log_lines(invocation, str(function.version)))
    if invocation.error is not None:
        return json.dumps(failure_document(invocation)), True, invocation.logs
    return json.dumps(invocation.result), False, invocation.logs


def apply() -> None:
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return invoke(self, event)

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
    sweep_stale(Path(tempfile.gettempdir()))
