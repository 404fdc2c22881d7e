"""Import every top-level module of a layer in the target interpreter, isolated from the host.

Only the layers' directories are on sys.path, in Lambda's order (/opt/python/lib/pythonX.Y/
site-packages, then /opt/python); the host's site-packages and PYTHONPATH are not.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .runtimes import Runtime, python_lib_dir

_CHECK = r"""
import importlib, importlib.metadata, json, sys
request = json.loads(sys.stdin.read())
sys.path[:0] = request["paths"]
result = {"imports": {}, "versions": {}}
for module in request["modules"]:
    try:
        importlib.import_module(module)
        result["imports"][module] = None
    except BaseException as exc:
        result["imports"][module] = f"{type(exc).__name__}: {exc}"
for name, expected in request["versions"].items():
    try:
        found = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        found = None
    result["versions"][name] = found
print("RESULT" + json.dumps(result))
"""


@dataclass(frozen=True)
class VerifyOutcome:
    import_failures: dict[str, str]  # module -> error
    version_mismatches: dict[str, tuple[str, str | None]]  # dist -> (locked, found)

    @property
    def ok(self) -> bool:
        return not self.import_failures and not self.version_mismatches


def lambda_sys_path(opt: Path, runtime: Runtime) -> list[str]:
    return [str(opt / python_lib_dir(runtime)), str(opt / "python")]


def check_layer(
    python: str, opt: Path, runtime: Runtime, modules: list[str], versions: dict[str, str]
) -> VerifyOutcome:
    """Run the imports and metadata checks in a fresh `python -I -S`, cwd outside the layer."""
    request = {"paths": lambda_sys_path(opt, runtime), "modules": modules, "versions": versions}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run(
        [python, "-I", "-S", "-B", "-c", _CHECK],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=opt,
        env=env,
        timeout=600,
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        crash = (result.stderr or result.stdout).strip()[-1500:]
        return VerifyOutcome({"(interpreter)": f"crashed while importing (exit {result.returncode}): {crash}"}, {})
    data = json.loads(line.removeprefix("RESULT"))
    failures = {m: e for m, e in data["imports"].items() if e is not None}
    mismatches = {name: (versions[name], found) for name, found in data["versions"].items() if found != versions[name]}
    return VerifyOutcome(failures, mismatches)


_IMPORT_EACH = r"""
import importlib, json, sys
paths, modules, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
sys.path[:0] = paths
with open(out, "a") as results:  # a file, not stdout: some modules print when imported
    for module in modules:
        results.write(json.dumps(["TRY", module]) + "\n"); results.flush()
        try:
            importlib.import_module(module)
            error = None
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        results.write(json.dumps(["DONE", module, error]) + "\n"); results.flush()
"""


def import_each(
    python: str, paths: list[str], modules: list[str], workdir: Path, timeout: float = 900
) -> dict[str, str | None]:
    """Import every module in one isolated interpreter; module -> error (None: imported).

    A module that crashes or hangs the interpreter is recorded as failing and the walk
    resumes after it in a fresh interpreter, so one bad module cannot hide the others."""
    results: dict[str, str | None] = {}
    todo = list(modules)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    while todo:
        out = workdir / "imports.jsonl"
        out.unlink(missing_ok=True)
        command = [python, "-I", "-S", "-B", "-c", _IMPORT_EACH, json.dumps(paths), json.dumps(todo), str(out)]
        try:
            finished = subprocess.run(command, capture_output=True, cwd=workdir, env=env, timeout=timeout)
            crash = f"crashed the interpreter (exit {finished.returncode})"
        except subprocess.TimeoutExpired:
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
        remaining = [m for m in todo if m not in results]
        if len(remaining) == len(todo):
            results.update({m: crash for m in remaining})
            break
        todo = remaining
    return results
