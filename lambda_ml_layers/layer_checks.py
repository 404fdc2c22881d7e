"""`nox -s layer_tests`: prove each built layer zip against an unstripped install of the same lock.

For a layer built for a runtime: its zip and its base layers' zips are extracted into a
fresh opt/ (Lambda's order), and the same lock is installed plainly (no stripping) beside
it. Every module of the layer's packages that imports from the plain install must import
from the zip, unless a strip rule removed it on purpose or the layer lists it under
[layer_tests] allowed_import_failures with a reason. Then the layer's smoke test runs, and
every package's version is checked against the lock.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .command_runner import call
from .config import LayerConfig, ProjectConfig, build_order
from .errors import LayerToolError
from .layer_contents import load_locks, packages_to_install
from .layer_tree import read_distributions
from .layer_zip import extract
from .paths import BuildPaths
from .pip_runner import install_for_target
from .runtimes import ARCHES, RUNTIMES, Runtime, python_lib_dir
from .strip_rules import plan_strip
from .target_scripts import script as target_script
from .verify import check_layer, lambda_sys_path, run_each

SMOKE_TEST = "smoke_test.py"


def module_name(rel: str) -> str | None:
    """The import name of a file under a layer's python/ folder, or None if it is not a module."""
    parts = rel.split("/")
    if "__pycache__" in parts:
        return None
    stem, dot, suffix = parts[-1].partition(".")
    is_module = suffix in ("py", "pyc") or (suffix.endswith("so") and suffix.startswith(("cpython", "abi3", "so")))
    if not dot or not is_module:
        return None
    names = [*parts[:-1], *([] if stem == "__init__" else [stem])]
    if not names or not all(n.isidentifier() for n in names) or names[-1] in ("__main__", "conftest"):
        return None
    return ".".join(names)


def modules_of(files: list[str]) -> dict[str, str]:
    """Module name -> one file that provides it."""
    found: dict[str, str] = {}
    for rel in files:
        name = module_name(rel)
        if name:
            found.setdefault(name, rel)
    return found


@dataclass
class LayerTestResult:
    layer: str
    runtime: str
    arch: str
    modules_checked: int = 0
    removed_on_purpose: int = 0
    allowed_failures: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def compare_imports(
    reference: dict[str, str | None],
    stripped: dict[str, str | None],
    removed_on_purpose: dict[str, str],
    allowed: dict[str, str],
    result: LayerTestResult,
) -> None:
    """Pure: every module that imports unstripped must import stripped, bar the listed exceptions."""
    for module, error in sorted(reference.items()):
        if error is not None:
            continue  # fails unstripped too: an optional dependency, not our doing
        result.modules_checked += 1
        if module in removed_on_purpose:
            result.removed_on_purpose += 1
            continue
        stripped_error = stripped.get(module, "not imported")
        if stripped_error is None:
            continue
        if module in allowed:
            result.allowed_failures += 1
            continue
        result.failures.append(f"import {module}: {stripped_error} (imports fine unstripped)")


def built_zip(output_dir: Path, layer: str) -> Path:
    path = output_dir / f"{layer}.zip"
    if not path.exists():
        raise LayerToolError(f"{path} is missing: run `inv build-layers` for this runtime and arch first.")
    return path


def test_layer(
    project: ProjectConfig,
    layer: LayerConfig,
    runtime: Runtime,
    arch: str,
    python: str,
    output_dir: Path,
    pip_cache: Path,
    say: Callable[[str], None] = print,
    find_links: Path | None = None,
) -> LayerTestResult:
    result = LayerTestResult(layer.name, runtime.name, arch)
    chain = build_order(project, [layer.name])  # bases first, then the layer
    locks = load_locks(project, chain)
    with tempfile.TemporaryDirectory(prefix=f"layer-test-{layer.name}-") as temp:
        work = Path(temp)
        opt = work / "opt"
        for member in chain:
            extract(built_zip(output_dir, member.name), opt)
        say(f"{layer.name}: installing the same lock unstripped for comparison")
        reference_site = work / "reference" / "python"
        packages = {name: p for c in chain for name, p in locks[c.name].packages.items()}
        install_for_target(list(packages.values()), reference_site, runtime, arch, pip_cache, find_links)
        own = {package.name for package in packages_to_install(project, locks, layer)}
        own_files = [f for dist in read_distributions(reference_site) if dist.name in own for f in dist.files]
        modules = modules_of(own_files)
        plan = plan_strip(own_files, layer.strip_rules, layer.protect)
        removed = {name: rule for rule, paths in plan.items() for rel in paths if (name := module_name(rel))}
        say(f"{layer.name}: importing {len(modules)} modules unstripped, then from the zip")
        reference = run_each(python, "import", sorted(modules), work, [str(reference_site)])
        importable = sorted(m for m, error in reference.items() if error is None)
        stripped = run_each(python, "import", importable, work, lambda_sys_path(opt, runtime))
        compare_imports(reference, stripped, removed, layer.allowed_import_failures, result)
        versions = {name: p.version for name, p in packages.items()}
        outcome = check_layer(python, opt, runtime, [], versions)
        result.failures += [
            f"{name}: lock says {locked}, the zip's metadata says {found}"
            for name, (locked, found) in sorted(outcome.version_mismatches.items())
        ]
        result.failures += run_smoke_test(python, layer, opt, runtime, work)
    return result


def run_smoke_test(python: str, layer: LayerConfig, opt: Path, runtime: Runtime, work: Path) -> list[str]:
    """Run layers/<name>/smoke_test.py in an isolated interpreter with only the layers on sys.path."""
    smoke_test = layer.folder / SMOKE_TEST
    if not smoke_test.exists():
        return [f"{smoke_test} is missing: each layer needs a smoke test of what it provides."]
    context = {"kept_aws_services": list(layer.aws_services or []), "site": str(opt / python_lib_dir(runtime))}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    paths = json.dumps(lambda_sys_path(opt, runtime))
    command = [python, "-I", "-S", target_script("smoke_launcher"), paths, json.dumps(context), str(smoke_test)]
    # error=None: a failing smoke test is one of this layer's failures, listed with the others.
    finished = call(command, cwd=work, env=env, timeout=600, error=None)
    if finished.timed_out:
        return [f"smoke test {smoke_test.name} did not finish within 600 s:\n{finished.tail()}"]
    if finished.returncode != 0:
        return [f"smoke test {smoke_test.name} failed:\n{finished.output.strip()[-2000:]}"]
    return []


def run_layer_tests(
    project: ProjectConfig,
    runtime_name: str,
    python: str,
    say: Callable[[str], None] = print,
    find_links: Path | None = None,
) -> list[LayerTestResult]:
    """Test every layer zip built for this runtime (any arch this machine can run); [] if none."""
    runtime = RUNTIMES[runtime_name]
    results = []
    paths = BuildPaths.of(project.root)
    for arch, machine in ARCHES.items():
        output_dir = paths.output_dir(runtime_name, arch)
        if not output_dir.is_dir() or not any(output_dir.glob("*.zip")):
            continue
        if machine != os.uname().machine:
            say(f"{output_dir}: {arch} layers cannot run on this {os.uname().machine} machine; not tested")
            continue
        for layer in build_order(project):
            if not (output_dir / f"{layer.name}.zip").exists():
                continue
            result = test_layer(project, layer, runtime, arch, python, output_dir, paths.pip_cache, say, find_links)
            say(
                f"{layer.name} ({runtime_name}, {arch}): {result.modules_checked} modules import unstripped; "
                f"{result.removed_on_purpose} removed on purpose by strip rules, {result.allowed_failures} allowed "
                f"to fail, {len(result.failures)} failures",
            )
            results.append(result)
    return results
