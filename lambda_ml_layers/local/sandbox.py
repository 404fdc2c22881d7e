"""A Lambda-like sandbox: lay a function out as Lambda does, then invoke its handler.

    task/  the function's package (what config/template.py's package_files lists), read-only
    opt/   its layers' zips extracted in the template's order (a later layer overwrites), read-only
    tmp/   the only writable place; template values under /tmp are mapped here

The handler runs in the target runtime's interpreter with `-I -S -B`: no host site-packages,
no PYTHON* variables, no bytecode written; sys.path is Lambda's: task, then
opt/python/lib/pythonX.Y/site-packages, then opt/python. The runtime's own boto3 is left
out on purpose, so a function works only if its layers carry what it imports. The process
stays up between invocations (warm starts) until a timeout or the memory figure is exceeded,
as Lambda's execution environment does. Running as root, permissions cannot stop writes;
-B still keeps Python from caching bytecode in task/ and opt/.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import select
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

from ..build.pruning.contract import invocation_fix
from ..build.pruning.step import pruned_layer_beside
from ..build.target_imports import lambda_sys_path
from ..config.template import FunctionSpec, package_files
from ..core.layer_tree import tree_size
from ..core.layer_zip import extract
from ..core.runtimes import Runtime
from ..target_scripts import script, traced

# The handlers' runtime defines the smoke event (the engine cannot import it: it needs the layers).
SHARED_RUNTIME = Path(__file__).resolve().parents[2] / "services" / "shared" / "runtime.py"


@cache
def smoke_event() -> dict[str, str]:
    """`SMOKE_EVENT` of services/shared/runtime.py: every function answers it with a smoke reply
    once its init (all layer imports) has run, and reads or writes nothing."""
    for node in ast.parse(SHARED_RUNTIME.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "SMOKE_EVENT" for t in node.targets):
            event: dict[str, str] = ast.literal_eval(node.value)
            return event
    raise LookupError(f"{SHARED_RUNTIME} defines no SMOKE_EVENT")


@dataclass(frozen=True)
class Invocation:
    result: Any  # what the handler returned (None when it failed)
    error: dict[str, Any] | None  # Lambda's error document: errorType, errorMessage, stackTrace
    logs: str  # what the function printed or logged during this invocation (and its init, if cold)
    cold: bool
    init_seconds: float | None  # cold only: interpreter start to handler imported (Lambda's Init Duration)
    import_seconds: float | None  # cold only: importing the handler's module
    duration_seconds: float
    max_memory_mb: float
    prune_fix: str | None = None  # a module a layer's [prune] removed: the keep/trace line to add

    @property
    def ok(self) -> bool:
        return self.error is None


class LambdaSandbox:
    def __init__(
        self,
        spec: FunctionSpec,
        layer_zips: list[Path],
        python: str,
        runtime: Runtime,
        environment: dict[str, str] | None = None,
        workdir: Path | None = None,
        trace_to: Path | None = None,
    ) -> None:
        self.spec = spec
        self.layer_zips = layer_zips
        self.python = python
        self.runtime = runtime
        self.extra_environment = environment or {}
        # Given a folder, the runtime runs under target_scripts/trace_loads.py and each of its
        # processes leaves a record there of what it loaded from opt/ (see layer_trace).
        self.trace_to = trace_to
        self._own_workdir = workdir is None
        # A temporary folder is made on entering, so a sandbox never entered leaves nothing behind.
        self.root = workdir or Path(tempfile.gettempdir()) / f"sandbox-{spec.name}-{uuid.uuid4().hex[:8]}"
        self.task = self.root / "task"
        self.opt = self.root / "opt"
        self.tmp = self.root / "tmp"
        self.log_path = self.root / "function.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._results: Any = None
        self._pending_init: tuple[float, float] | None = None
        self.pruned = [p for p in map(pruned_layer_beside, layer_zips) if p is not None]

    # -- layout ---------------------------------------------------------------------------
    def lay_out(self) -> None:
        for rel, _ in package_files(self.spec.code_dir):
            target = self.task / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.spec.code_dir / rel, target)
        self.task.mkdir(parents=True, exist_ok=True)
        for layer_zip in self.layer_zips:
            extract(layer_zip, self.opt)
        self.opt.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        for folder in (self.task, self.opt):
            _set_writable(folder, False)

    @property
    def extracted_bytes(self) -> int:
        """Bytes in task/ and opt/: what Lambda counts against 262,144,000."""
        return tree_size(self.task) + tree_size(self.opt)

    def environment(self) -> dict[str, str]:
        """The runtime's variables, then the template's (/tmp mapped), then the caller's."""
        name = self.spec.name
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "HOME": str(self.tmp),
            "TMPDIR": str(self.tmp),
            "LAMBDA_TASK_ROOT": str(self.task),
            "LAMBDA_RUNTIME_DIR": str(self.root / "runtime"),
            "_HANDLER": self.spec.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.runtime.name}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"sandbox/[$LATEST]{uuid.uuid4().hex}",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        for key, value in self.spec.environment.items():
            env[key] = str(self.tmp / value.removeprefix("/tmp").lstrip("/")) if value.startswith("/tmp") else value
        env.update(self.extra_environment)
        return env

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> LambdaSandbox:
        try:
            self.lay_out()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        if self._own_workdir:
            _set_writable(self.root, True)
            shutil.rmtree(self.root, ignore_errors=True)

    def stop(self) -> None:
        if self.process is not None:
            if self.trace_to is not None:
                self._let_exit()
            self.process.kill()
            self.process.wait()
            self.process = None
        if self._results is not None:
            self._results.close()
            self._results = None

    def _let_exit(self) -> None:
        """End of input ends the runtime's loop: it exits on its own, so its tracer writes the record."""
        assert self.process is not None and self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it exited already
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):  # killed below; its reader says the record is missing
            self.process.wait(timeout=30)

    def _start(self) -> tuple[float, float, dict[str, Any] | None]:
        read_fd, write_fd = os.pipe()
        started = time.perf_counter()
        paths = json.dumps(lambda_sys_path(self.opt, self.runtime))
        with self.log_path.open("ab") as log:
            # Not command_runner.call: the runtime stays up between invocations (warm starts), fed
            # requests on stdin and answering on its own pipe while the sandbox lives.
            self.process = subprocess.Popen(
                [
                    self.python,
                    "-I",
                    "-S",
                    "-B",
                    "-u",
                    *(traced(self.trace_to, self.opt) if self.trace_to is not None else []),
                    script("lambda_runtime"),
                    str(self.task),
                    paths,
                    self.spec.handler,
                    str(write_fd),
                ],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.task,
                env=self.environment(),
                pass_fds=(write_fd,),
            )
        os.close(write_fd)
        self._results = os.fdopen(read_fd)
        ready = self._read(self.spec.timeout_s + 60)
        if ready is None:
            self.stop()
            return (
                time.perf_counter() - started,
                0.0,
                {"errorType": "Runtime.ExitError", "errorMessage": "the runtime exited during init; see the logs"},
            )
        return time.perf_counter() - started, float(ready["import_seconds"]), ready["init_error"]

    def _read(self, timeout: float) -> dict[str, Any] | None:
        assert self._results is not None
        ready, _, _ = select.select([self._results], [], [], timeout)
        if not ready:
            return None
        line = self._results.readline()
        return json.loads(line) if line else None

    def invoke(self, event: Any) -> Invocation:
        """Invoke the handler with `event`; starts (cold) or reuses (warm) the environment."""
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        cold = self.process is None
        init_seconds = import_seconds = None
        if cold:
            init_seconds, import_seconds, init_failure = self._start()
            if self.process is None:
                return self._finish(None, init_failure, log_offset, True, init_seconds, import_seconds, 0.0, 0)
        assert self.process is not None and self.process.stdin is not None
        deadline = time.time() + self.spec.timeout_s
        self.process.stdin.write((json.dumps({"event": event, "deadline": deadline}) + "\n").encode())
        self.process.stdin.flush()
        response = self._read(self.spec.timeout_s)
        if response is None:
            timed_out = self.process.poll() is None
            self.stop()  # Lambda throws the environment away; the next invocation is cold
            message = (
                f"Task timed out after {self.spec.timeout_s:.2f} seconds"
                if timed_out
                else "Runtime exited without a response; see the logs"
            )
            failure = {"errorType": "Sandbox.Timedout" if timed_out else "Runtime.ExitError", "errorMessage": message}
            return self._finish(None, failure, log_offset, cold, init_seconds, import_seconds, self.spec.timeout_s, 0)
        error: dict[str, Any] | None = response.get("error")
        max_rss_kb = int(response["max_rss_kb"])
        if max_rss_kb / 1024 > self.spec.memory_mb:
            self.stop()
            error = {
                "errorType": "Runtime.OutOfMemory",
                "errorMessage": f"Runtime exited: used {max_rss_kb / 1024:.0f} MB of {self.spec.memory_mb} MB",
            }
        return self._finish(
            response.get("result"),
            error,
            log_offset,
            cold,
            init_seconds,
            import_seconds,
            float(response["duration_seconds"]),
            max_rss_kb,
        )

    def _finish(
        self,
        result: Any,
        error: dict[str, Any] | None,
        log_offset: int,
        cold: bool,
        init_seconds: float | None,
        import_seconds: float | None,
        duration: float,
        max_rss_kb: int,
    ) -> Invocation:
        with self.log_path.open("rb") as log:
            log.seek(log_offset)
            logs = log.read().decode(errors="replace")
        return Invocation(
            result=result if error is None else None,
            error=error,
            logs=logs,
            cold=cold,
            init_seconds=init_seconds,
            import_seconds=import_seconds,
            duration_seconds=duration,
            max_memory_mb=max_rss_kb / 1024,
            prune_fix=invocation_fix(error, result, logs, self.pruned),
        )


def _set_writable(root: Path, writable: bool) -> None:
    """Make a tree read-only as /var/task and /opt are (or writable again to delete it)."""
    if not root.exists():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*filenames, *dirnames]:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            path.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    mode = root.stat().st_mode
    root.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
