"""A Lambda-like sandbox: lay a function out as Lambda does, then invoke its handler.

    task/  the function's package (what config/template.py's package_files lists), read-only
    opt/   its layers' zips extracted in the template's order (a later layer overwrites), read-only
    tmp/   the only writable place; template values under /tmp are mapped here

The handler runs through AWS's own Runtime Interface Client (awslambdaric, runtime_client.py)
in the target runtime's interpreter with `-I -S -B`: no host site-packages, no PYTHON*
variables, no bytecode written; sys.path is Lambda's: task, then
opt/python/lib/pythonX.Y/site-packages, then opt/python, then the runtime client's folder.
The runtime's own boto3 is left out on purpose, so a function works only if its layers carry
what it imports. The client takes events from a local Runtime API (runtime_api.py); the sandbox
times init and each invocation and reads the process's peak memory itself, since those are
what Lambda's REPORT line shows (`log_lines`). The process stays up between invocations (warm
starts) until a timeout or the memory figure is exceeded, as Lambda's execution environment
does. Running as root, permissions cannot stop writes; -B still keeps Python from caching
bytecode in task/ and opt/.

A function for another architecture (arm64 on this x86_64 machine) runs in that architecture's
interpreter of its runtime under qemu (core/toolchains.py, `target_interpreter`), with awslambdaric
installed for it: imports and answers are real, but its timings are qemu's, so the REPORT line
says "(under qemu)" beside them.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import queue
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
from ..core.errors import InterpreterMissing
from ..core.layer_tree import tree_size
from ..core.layer_zip import extract
from ..core.runtimes import Runtime
from ..core.toolchains import find_toolchain
from ..target_scripts import script, traced
from .runtime_api import ACCOUNT, PendingInvocation, RuntimeAPI, RuntimeMessage
from .runtime_client import runtime_client_dir

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


EMULATED = "(under qemu)"


def target_interpreter(runtime: Runtime, arch: str) -> tuple[str, bool]:
    """(interpreter, emulated): what runs a function of `runtime` on `arch` here, the native
    interpreter or the target's under qemu, whose timings are not comparable to Lambda's."""
    toolchain = find_toolchain(runtime, arch)
    if toolchain.python is None:
        raise InterpreterMissing(
            # The interpreter's reason is the last one find_toolchain names.
            f"The sandbox cannot run a {runtime.name} function on {arch} here: {toolchain.missing[-1]}.\n"
            f'  Fix: run it on a runtime this machine has for {arch} (docs/deploying.md, "arm64").'
        )
    return toolchain.python, toolchain.emulated


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
    request_id: str = ""  # the id the runtime saw (its log lines carry it)
    memory_size_mb: int = 0  # the function's configured memory
    emulated: bool = False  # ran under qemu: the durations are not comparable to Lambda's

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
        emulated: bool = False,
    ) -> None:
        self.spec = spec
        self.layer_zips = layer_zips
        self.python = python
        self.runtime = runtime
        self.emulated = emulated  # `python` runs under qemu (target_interpreter)
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
        self._api: RuntimeAPI | None = None
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
        if self._api is not None:
            self._api.close()
            self._api = None

    def _let_exit(self) -> None:
        """A failed /next ends awslambdaric's loop: it exits on its own, so its tracer writes the record."""
        assert self.process is not None and self._api is not None
        self._api.close()
        self._api = None
        with contextlib.suppress(subprocess.TimeoutExpired):  # killed below; its reader says the record is missing
            self.process.wait(timeout=30)

    def _start(self) -> tuple[float, float | None, dict[str, Any] | None]:
        """Start the runtime and wait for its init: (init seconds, import seconds, init failure)."""
        client = runtime_client_dir(self.runtime, self.spec.arch)
        self._api = RuntimeAPI()
        paths = [str(self.task), *lambda_sys_path(self.opt, self.runtime), str(client)]
        env = self.environment()
        env["AWS_LAMBDA_RUNTIME_API"] = self._api.address
        read_fd, write_fd = os.pipe()
        started = time.time()
        with self.log_path.open("ab") as log:
            # Not command_runner.call: the runtime stays up between invocations (warm starts),
            # taking events from the Runtime API while the sandbox lives.
            self.process = subprocess.Popen(
                [
                    self.python,
                    "-I",
                    "-S",
                    "-B",
                    "-u",
                    *(traced(self.trace_to, self.opt) if self.trace_to is not None else []),
                    script("lambda_bootstrap"),
                    self.spec.handler,
                    json.dumps(paths),
                    str(write_fd),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.task,
                env=env,
                pass_fds=(write_fd,),
            )
        os.close(write_fd)
        with os.fdopen(read_fd) as launched_pipe:
            message = self._await(("next", "init_error"), started + self.spec.timeout_s + 60)
            launched_text = launched_pipe.read() if message is not None and message.kind == "next" else ""
        if message is None or message.kind != "next":
            exited = self.process.poll() is not None
            self.stop()
            failure = (
                _error_document(message.body)
                if message is not None
                else {
                    "errorType": "Runtime.ExitError" if exited else "Sandbox.Timedout",
                    "errorMessage": "the runtime exited during init; see the logs"
                    if exited
                    else f"init did not finish in {self.spec.timeout_s + 60} seconds",
                }
            )
            return (message.at if message else time.time()) - started, None, failure
        launched = float(launched_text) if launched_text else started
        return message.at - started, message.at - launched, None

    def _await(self, kinds: tuple[str, ...], deadline: float) -> RuntimeMessage | None:
        """The runtime's next message of one of these kinds; None if it exits or the deadline passes."""
        assert self.process is not None and self._api is not None
        while True:
            with contextlib.suppress(queue.Empty):
                message = self._api.messages.get(timeout=0.02)
                if message.kind in kinds:
                    return message
                continue
            if self.process.poll() is not None:
                # It may have posted just before exiting (an init error does): read what is left.
                with contextlib.suppress(queue.Empty):
                    while (message := self._api.messages.get_nowait()).kind not in kinds:
                        pass
                    return message
                return None
            if time.time() > deadline:
                return None

    def invoke(
        self, event: Any, client_context: dict[str, Any] | None = None, identity: dict[str, Any] | None = None
    ) -> Invocation:
        """Invoke the handler with `event`; starts (cold) or reuses (warm) the environment."""
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        request_id = str(uuid.uuid4())
        cold = self.process is None
        init_seconds = import_seconds = None
        if cold:
            init_seconds, import_seconds, init_failure = self._start()
            if self.process is None:
                return self._finish(
                    None, init_failure, log_offset, True, init_seconds, import_seconds, 0.0, 0, request_id
                )
        assert self.process is not None and self._api is not None
        began = time.time()
        deadline = began + self.spec.timeout_s
        arn = f"arn:aws:lambda:{self.environment()['AWS_REGION']}:{ACCOUNT}:function:{self.spec.name}"
        self._api.invoke(PendingInvocation(request_id, event, int(deadline * 1000), arn, client_context, identity))
        message = self._await(("response", "error"), deadline)
        peak_kb = _peak_rss_kb(self.process.pid)
        if message is None or message.request_id != request_id:
            timed_out = self.process.poll() is None
            self.stop()  # Lambda throws the environment away; the next invocation is cold
            text = (
                f"Task timed out after {self.spec.timeout_s:.2f} seconds"
                if timed_out
                else "Runtime exited without a response; see the logs"
            )
            failure = {"errorType": "Sandbox.Timedout" if timed_out else "Runtime.ExitError", "errorMessage": text}
            duration = time.time() - began
            return self._finish(
                None, failure, log_offset, cold, init_seconds, import_seconds, duration, peak_kb, request_id
            )
        error = _error_document(message.body) if message.kind == "error" else None
        if peak_kb / 1024 > self.spec.memory_mb:
            self.stop()
            error = {
                "errorType": "Runtime.OutOfMemory",
                "errorMessage": f"Runtime exited: used {peak_kb / 1024:.0f} MB of {self.spec.memory_mb} MB",
            }
        result = message.body if message.kind == "response" else None
        duration = message.at - began
        return self._finish(
            result, error, log_offset, cold, init_seconds, import_seconds, duration, peak_kb, request_id
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
        request_id: str,
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
            request_id=request_id,
            memory_size_mb=self.spec.memory_mb,
            emulated=self.emulated,
        )


def _error_document(body: Any) -> dict[str, Any]:
    """The runtime's error document as Lambda returns it (a body that is not one is wrapped)."""
    if isinstance(body, dict) and "errorType" in body:
        return body
    return {"errorType": "Runtime.Unknown", "errorMessage": str(body)}


def _peak_rss_kb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), what Lambda reports as Max Memory Used."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass  # it exited already
    return 0


def report_line(invocation: Invocation) -> str:
    """The REPORT line Lambda writes after an invocation; Init Duration only for a cold start."""
    duration_ms = invocation.duration_seconds * 1000
    qemu = f" {EMULATED}" if invocation.emulated else ""
    fields = [
        f"REPORT RequestId: {invocation.request_id}",
        f"Duration: {duration_ms:.2f} ms{qemu}",
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms",
        f"Memory Size: {invocation.memory_size_mb} MB",
        f"Max Memory Used: {max(1, round(invocation.max_memory_mb))} MB",
    ]
    if invocation.cold and invocation.init_seconds is not None:
        fields.append(f"Init Duration: {invocation.init_seconds * 1000:.2f} ms{qemu}")
    return "\t".join(fields) + "\t"


def log_lines(invocation: Invocation, version: str = "$LATEST") -> list[str]:
    """START, the function's own output, END and REPORT, as Lambda writes them to the log stream."""
    printed = [line for line in invocation.logs.splitlines() if line.strip()]
    return [
        f"START RequestId: {invocation.request_id} Version: {version}",
        *printed,
        f"END RequestId: {invocation.request_id}",
        report_line(invocation),
    ]


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
