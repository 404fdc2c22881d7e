"""Import every top-level module of a layer in the target interpreter, isolated from the host.

Only the layers' directories are on sys.path, in Lambda's order (/opt/python/lib/pythonX.Y/
site-packages, then /opt/python); the host's site-packages and PYTHONPATH are not.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from ..core.command_runner import call
from ..core.errors import BuildInterrupted
from ..core.runtimes import Runtime, python_lib_dir
from ..target_scripts import script


@dataclass(frozen=True)
class VerifyOutcome:
    import_failures: dict[str, str]  # module -> error
    version_mismatches: dict[str, tuple[str, str | None]]  # dist -> (locked, found)
    client_failures: dict[str, str] = field(default_factory=dict)  # AWS service -> error making its client

    @property
    def ok(self) -> bool:
        return not self.import_failures and not self.version_mismatches and not self.client_failures


def lambda_sys_path(opt: Path, runtime: Runtime) -> list[str]:
    return [str(opt / python_lib_dir(runtime)), str(opt / "python")]


def check_layer(
    python: str,
    opt: Path,
    runtime: Runtime,
    modules: list[str],
    versions: dict[str, str],
    timeout: float = 600,
    clients: list[str] | tuple[str, ...] = (),
) -> VerifyOutcome:
    """Run the imports and metadata checks in a fresh `python -I -S`, cwd outside the layer, and
    create a boto3 client for each of `clients` (a trimmed botocore must still serve them)."""
    request = {"paths": lambda_sys_path(opt, runtime), "modules": modules, "versions": versions, "clients": clients}
    # The host's AWS settings (a profile that does not exist here, a stray endpoint) must not decide it.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    command = [python, "-I", "-S", "-B", script("check_imports")]
    # error=None: a failed import is this check's answer, reported by the caller as a VerifyError.
    # split_stderr: the RESULT line is read from stdout alone, whatever the imports log to stderr.
    result = call(command, input=json.dumps(request), cwd=opt, env=env, timeout=timeout, split_stderr=True, error=None)
    if result.timed_out:
        return VerifyOutcome({"(interpreter)": f"importing {', '.join(modules)} took over {timeout:.0f}s"}, {})
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        crash = (result.output or result.stdout).strip()[-1500:]
        return VerifyOutcome({"(interpreter)": f"crashed while importing (exit {result.returncode}): {crash}"}, {})
    data = json.loads(line.removeprefix("RESULT"))
    failures = {m: e for m, e in data["imports"].items() if e is not None}
    mismatches = {name: (versions[name], found) for name, found in data["versions"].items() if found != versions[name]}
    client_failures = {service: e for service, e in data["clients"].items() if e is not None}
    return VerifyOutcome(failures, mismatches, client_failures)


def run_each(
    python: str, action: str, items: list[str], workdir: Path, paths: list[str] | None = None, timeout: float = 900
) -> dict[str, str | None]:
    """`import` each module or `load-library` each shared object in one isolated interpreter;
    item -> error (None: fine).

    An item that crashes or hangs the interpreter is recorded as failing and the run resumes
    after it in a fresh interpreter, so one bad item cannot hide the others. An interpreter
    stopped by Ctrl-C stops the build instead of blaming the item."""
    results: dict[str, str | None] = {}
    todo = list(items)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    out = workdir / f".{action}-results.jsonl"
    while todo:
        out.unlink(missing_ok=True)
        command = [python, "-I", "-S", "-B", script("try_each"), json.dumps(paths or []), json.dumps(todo), action]
        # error=None: a crash or a hang is blamed on the item being tried, read from the results file.
        finished = call([*command, str(out)], cwd=workdir, env=env, timeout=timeout, error=None)
        if finished.returncode == -signal.SIGINT:
            raise BuildInterrupted("Interrupted.")
        crash = f"crashed the interpreter (exit {finished.returncode})"
        if finished.timed_out:
            crash = f"hung: no answer within {timeout:.0f}s"
        trying = None
        for line in out.read_text().splitlines() if out.exists() else []:
            record = json.loads(line)
            if record[0] == "TRY":
                trying = record[1]
            else:
                results[record[1]] = record[2]
                trying = None
        if trying is not None:
            results[trying] = crash
        remaining = [item for item in todo if item not in results]
        if len(remaining) == len(todo):
            results.update({item: crash for item in remaining})
            break
        todo = remaining
    out.unlink(missing_ok=True)
    return results
