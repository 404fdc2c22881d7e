"""invoke(function logical id, payload) for the interpreter, through the project's LambdaSandbox.

Each function gets a pool of sandboxes, each its own process and /tmp (one execution environment
of Lambda), made on first need and reused warm afterwards. A Map with MaxConcurrency N may ask
for N at once; at most `max_per_function` exist per function (default 1: the machine may have 2
cores), and the others wait for one to be free, as Lambda's reserved concurrency would throttle.
A function error becomes StatesFailure(errorType, error document), as Step Functions reports it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ...config.template import FunctionSpec
from ...core.errors import StateMachineError, collect
from ...core.runtimes import Runtime
from ..sandbox import Invocation, LambdaSandbox
from .failures import StatesFailure
from .interpreter import lambda_error_cause


@dataclass(frozen=True)
class SandboxSetup:
    python: str  # the target runtime's interpreter (interpreters.find_interpreter)
    runtime: Runtime
    layers_dir: Path  # BuildPaths.output_dir(runtime, arch): the built layer zips
    environment: dict[str, str]  # added to each function's own variables (endpoint, buckets, table)
    max_per_function: int = 1


@dataclass(frozen=True)
class InvocationRecord:
    function: str
    invocation: Invocation


def layer_zips(spec: FunctionSpec, layers_dir: Path) -> list[Path]:
    """The function's built layer zips, in the template's order (the order Lambda extracts them)."""
    return [layers_dir / f"{layer}.zip" for layer in spec.layers]


class _Pool:
    def __init__(self, spec: FunctionSpec, setup: SandboxSetup) -> None:
        self.spec, self.setup = spec, setup
        self.idle: list[LambdaSandbox] = []
        self.made: list[LambdaSandbox] = []
        self.most = 0  # the most sandboxes this function had at once
        self.closed = False  # after close (the run ended or was interrupted) no sandbox is handed out
        self.condition = threading.Condition()

    def acquire(self) -> LambdaSandbox:
        with self.condition:
            while not self.closed and not self.idle and len(self.made) >= self.setup.max_per_function:
                self.condition.wait()
            if self.closed:
                raise StatesFailure("Lambda.ServiceException", f"{self.spec.name}: the local run is over")
            if self.idle:
                return self.idle.pop()
            sandbox = LambdaSandbox(
                self.spec,
                layer_zips(self.spec, self.setup.layers_dir),
                self.setup.python,
                self.setup.runtime,
                self.setup.environment,
            )
            self.made.append(sandbox)
            self.most = max(self.most, len(self.made))
        try:
            sandbox.__enter__()  # lays out task/ and opt/ outside the lock: others may run meanwhile
        except BaseException:
            with self.condition:
                if sandbox in self.made:
                    self.made.remove(sandbox)
                self.condition.notify()
            raise
        if self.closed:  # closed while laying out: nobody else will remove it
            sandbox.__exit__(None, None, None)
            raise StatesFailure("Lambda.ServiceException", f"{self.spec.name}: the local run is over")
        return sandbox

    def release(self, sandbox: LambdaSandbox) -> None:
        with self.condition:
            self.idle.append(sandbox)
            self.condition.notify()

    def close(self) -> None:
        with self.condition:
            made, self.made, self.idle, self.closed = self.made, [], [], True
            self.condition.notify_all()
        for sandbox in made:
            sandbox.__exit__(None, None, None)


class SandboxInvoker:
    """Use as a context manager: leaving it stops every sandbox process and removes its folders."""

    def __init__(self, specs: Mapping[str, FunctionSpec], setup: SandboxSetup) -> None:
        if setup.max_per_function < 1:
            raise StateMachineError(
                f"max_per_function is {setup.max_per_function}; at least 1 sandbox per function is needed."
            )
        missing = [
            f"{name}: {zip_path} (layer {zip_path.stem})"
            for name, spec in specs.items()
            for zip_path in layer_zips(spec, setup.layers_dir)
            if not zip_path.is_file()
        ]
        collect(missing, StateMachineError, "Layer zips the functions need are not built. Fix: inv build-layers.")
        self._pools = {name: _Pool(spec, setup) for name, spec in specs.items()}
        self._lock = threading.Lock()
        self.invocations: list[InvocationRecord] = []

    def __enter__(self) -> SandboxInvoker:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()

    def __call__(self, function: str, payload: Any) -> Any:
        pool = self._pools.get(function)
        if pool is None:
            raise StatesFailure(
                "Lambda.ResourceNotFoundException", f"Function not found: {function} (known: {', '.join(self._pools)})"
            )
        sandbox = pool.acquire()
        try:
            invocation = sandbox.invoke(payload)
        finally:
            pool.release(sandbox)
        with self._lock:
            self.invocations.append(InvocationRecord(function, invocation))
        if invocation.error is not None:
            error = invocation.error
            raise StatesFailure(str(error.get("errorType", "Lambda.Unknown")), lambda_error_cause(error))
        return invocation.result

    def peak_memory_mb(self) -> dict[str, float]:
        """Each function's highest peak RSS over its invocations (against its MemorySize)."""
        peaks: dict[str, float] = {}
        with self._lock:
            for record in self.invocations:
                peaks[record.function] = max(peaks.get(record.function, 0.0), record.invocation.max_memory_mb)
        return peaks

    def most_sandboxes(self) -> dict[str, int]:
        """The most sandboxes (processes) each function had at once."""
        return {name: pool.most for name, pool in self._pools.items()}
