"""One way to run an outside command (pip, strip, the target interpreter, sam, checkov): stream
or capture its output, and turn a failure into the project's own error naming the command and
its last lines. The engine's other modules do not import subprocess; the exceptions are
long-running processes it talks to while they run (the moto server, the sandbox's runtime)
or stops as a process group (a library's test suite over its time budget)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import LayerToolError, ToolMissing


def find_tool(
    label: str,
    name: str,
    variable: str,
    venv_path: Path,
    purpose: str,
    fix: str,
    error: type[LayerToolError] = ToolMissing,
    env: Mapping[str, str] | None = None,
) -> Path:
    """An outside tool (`label` names it to a person): $`variable` (must then be executable),
    else the project's `venv_path`, else `name` on PATH. Missing: `error` naming every place
    looked at and the fix."""
    env = os.environ if env is None else env
    override = env.get(variable)
    if override:
        path = Path(override)
        if _is_executable(path):
            return path.absolute()
        raise error(
            f"{label} was not found: ${variable} is {override}, which is not an executable file.\n"
            f"  Fix: point ${variable} at a {name} executable, or unset it to use {venv_path}."
        )
    if _is_executable(venv_path):
        return venv_path.absolute()
    on_path = shutil.which(name, path=env.get("PATH"))
    if on_path:
        return Path(on_path)
    raise error(
        f"{label} was not found (not installed?); {purpose}. Looked at ${variable} (unset), {venv_path.absolute()} and "
        f"{name} on PATH.\n  Fix: {fix}"
    )


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@dataclass(frozen=True)
class CommandResult:
    command: list[str]
    returncode: int  # negative: killed by that signal (-2: Ctrl-C)
    output: str  # stdout and stderr together; empty when the command ran on the terminal
    stdout: str = ""  # only with split_stderr: stdout alone (output then holds stderr)
    timed_out: bool = False  # killed after `timeout` seconds

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def call(
    command: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    echo: Callable[[str], None] | None = None,
    terminal: bool = False,
    error: type[LayerToolError] | None = LayerToolError,
    what: str = "",
    input: str | None = None,
    timeout: float | None = None,
    split_stderr: bool = False,
) -> CommandResult:
    """Run `command`. `echo` gets each output line as it comes (progress of long work);
    `terminal` hands the command this process's terminal instead (it may ask a question).
    `input` is written to its stdin; after `timeout` seconds it is killed (`timed_out`);
    `split_stderr` keeps stdout apart (for commands whose stdout is data, e.g. JSON).
    A non-zero exit or a timeout raises `error` (unless None: the caller reads the result)
    with the command and the output's last lines."""
    try:
        if terminal:
            process = subprocess.run(command, cwd=cwd, env=env, check=False)
            result = CommandResult(command, process.returncode, "")
        elif input is not None or timeout is not None or split_stderr:
            result = _capture(command, cwd, env, input, timeout, split_stderr)
        else:
            result = _stream(command, cwd, env, echo)
    except FileNotFoundError:
        raise ToolMissing(f"{command[0]}: not found. It is needed to {what or 'run ' + shlex.join(command)}.") from None
    if (result.returncode != 0 or result.timed_out) and error is not None:
        shown = f"\n{result.tail()}" if result.output else ""
        how = f"did not finish within {timeout:.0f} s" if result.timed_out else f"failed (exit {result.returncode})"
        raise error(f"{what or command[0]} {how}: {shlex.join(command)}{shown}")
    return result


def _capture(
    command: list[str],
    cwd: Path | None,
    env: dict[str, str] | None,
    input: str | None,
    timeout: float | None,
    split_stderr: bool,
) -> CommandResult:
    try:
        process = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if split_stderr else subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:  # subprocess.run has killed it already
        partial = expired.stdout.decode(errors="replace") if isinstance(expired.stdout, bytes) else expired.stdout
        return CommandResult(command, -9, partial or "", timed_out=True)
    if split_stderr:
        return CommandResult(command, process.returncode, process.stderr, stdout=process.stdout)
    return CommandResult(command, process.returncode, process.stdout)


def _stream(
    command: list[str], cwd: Path | None, env: dict[str, str] | None, echo: Callable[[str], None] | None
) -> CommandResult:
    kept: deque[str] = deque(maxlen=2000)
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                line = line.rstrip("\n")
                kept.append(line)
                if echo:
                    echo(line)
        except BaseException:
            # Ctrl-C reaches the child too (same process group); give it a moment to stop.
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
        returncode = process.wait()
    return CommandResult(command, returncode, "\n".join(kept))
