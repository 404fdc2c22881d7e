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
        [python, "-I", "-S", "-c", _CHECK],
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
