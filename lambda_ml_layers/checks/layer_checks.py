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
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from ..build.layer_contents import load_locks, packages_to_install
from ..build.module_walk import modules_of
from ..build.pip_runner import install_for_target
from ..build.pruning.contract import explain_missing
from ..build.pruning.step import pruned_by_config
from ..build.target_imports import check_layer, lambda_sys_path, run_each
from ..config.project import LayerConfig, ProjectConfig, build_order
from ..config.strip_rules import plan_strip
from ..core.command_runner import call
from ..core.errors import LayerTestFailed
from ..core.layer_tree import module_name, read_distributions
from ..core.layer_zip import extract
from ..core.paths import BuildPaths
from ..core.runtimes import RUNTIMES, Runtime, python_lib_dir
from ..target_scripts import script as target_script
from ..target_scripts import traced
from .layer_test_plan import build_command, layer_test_plan, target_interpreter

SMOKE_TEST = "smoke_test.py"


@dataclass
class LayerTestResult:
    layer: str
    runtime: str
    arch: str
    modules_checked: int = 0
    removed_on_purpose: int = 0
    pruned_on_purpose: int = 0  # removed by the layer's [prune] (neither traced nor kept): not imported
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
    pruned: set[str] | None = None,
    explain: Callable[[str], str | None] = lambda error: None,
) -> None:
    """Pure: every module that imports unstripped must import stripped, bar the listed exceptions.
    A module the layer's [prune] removed is counted apart; a failure `explain` recognises (a pruned
    module missing) gets the [prune] line to change."""
    for module, error in sorted(reference.items()):
        if error is not None:
            continue  # fails unstripped too: an optional dependency, not our doing
        result.modules_checked += 1
        if module in removed_on_purpose:
            result.removed_on_purpose += 1
            continue
        if module in (pruned or set()):
            result.pruned_on_purpose += 1
            continue
        stripped_error = stripped.get(module, "not imported")
        if stripped_error is None:
            continue
        if module in allowed:
            result.allowed_failures += 1
            continue
        fix = explain(stripped_error)
        result.failures.append(
            f"import {module}: {stripped_error} (imports fine unstripped)" + (f"\n        {fix}" if fix else "")
        )


def extract_built(output_dir: Path, layer: str, runtime: Runtime, arch: str, opt: Path) -> None:
    """Extract one published zip into opt/; a missing, truncated or corrupt zip names itself and the fix."""
    path = output_dir / f"{layer}.zip"
    fix = f"Fix: `{build_command(runtime.name, arch)} --force` writes it again."
    if not path.exists():
        raise LayerTestFailed(f"{path} is missing. {fix}")
    try:
        extract(path, opt)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        # BadZipFile covers "File is not a zip file" (truncated) and "Bad CRC-32" (bytes changed).
        raise LayerTestFailed(
            f"{path} is not a readable zip ({exc}): it was truncated or changed after the build. {fix}"
        ) from None


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
    host_python: str | None = None,
) -> LayerTestResult:
    """`host_python` (set when `python` runs under qemu): a native interpreter of the same version
    that compiles the unstripped install's bytecode first (precompile)."""
    result = LayerTestResult(layer.name, runtime.name, arch)
    chain = build_order(project, [layer.name])  # bases first, then the layer
    locks = load_locks(project, chain)
    with tempfile.TemporaryDirectory(prefix=f"layer-test-{layer.name}-") as temp:
        work = Path(temp)
        opt = work / "opt"
        for member in chain:
            extract_built(output_dir, member.name, runtime, arch, opt)
        say(f"{layer.name}: installing the same lock unstripped for comparison")
        reference_site = work / "reference" / "python"
        packages = {name: p for c in chain for name, p in locks[c.name].packages.items()}
        install_for_target(list(packages.values()), reference_site, runtime, arch, pip_cache, find_links)
        if host_python is not None:
            precompile(host_python, reference_site)
        own = {package.name for package in packages_to_install(project, locks, layer)}
        own_files = [f for dist in read_distributions(reference_site) if dist.name in own for f in dist.files]
        modules = modules_of(own_files)
        plan = plan_strip(own_files, layer.strip_rules, layer.protect)
        removed = {name: rule for rule, paths in plan.items() for rel in paths if (name := module_name(rel))}
        pruned, pruned_layers = pruned_by_config(layer, reference_site, own_files)
        say(f"{layer.name}: importing {len(modules)} modules unstripped, then from the zip")
        reference = run_each(python, "import", sorted(modules), work, [str(reference_site)])
        importable = sorted(m for m, error in reference.items() if error is None and m not in pruned)
        stripped = run_each(python, "import", importable, work, lambda_sys_path(opt, runtime))
        explain = partial(explain_missing, layers=pruned_layers)
        compare_imports(reference, stripped, removed, layer.allowed_import_failures, result, pruned, explain)
        versions = {name: p.version for name, p in packages.items()}
        outcome = check_layer(python, opt, runtime, [], versions)
        result.failures += [
            f"{name}: lock says {locked}, the zip's metadata says {found}"
            for name, (locked, found) in sorted(outcome.version_mismatches.items())
        ]
        result.failures += run_smoke_test(python, layer, opt, runtime, work)
    return result


def precompile(host_python: str, site: Path) -> None:
    """Compile `site`'s bytecode with a native interpreter of the target's version (bytecode is the same
    on every arch), as pip would have, so code run under qemu does not compile each module from source
    first (several times slower than native)."""
    # error=None: a file that does not compile is left as source; its import then says why.
    call([host_python, "-m", "compileall", "-q", "-j0", str(site)], error=None)


def run_smoke_test(
    python: str, layer: LayerConfig, opt: Path, runtime: Runtime, work: Path, trace_to: Path | None = None
) -> list[str]:
    """Run layers/<name>/smoke_test.py in an isolated interpreter with only the layers on sys.path;
    given `trace_to`, under the tracer, which leaves its record there (see layer_trace)."""
    smoke_test = layer.folder / SMOKE_TEST
    if not smoke_test.exists():
        return [f"{smoke_test} is missing: each layer needs a smoke test of what it provides."]
    context = {"kept_aws_services": list(layer.aws_services or []), "site": str(opt / python_lib_dir(runtime))}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    paths = json.dumps(lambda_sys_path(opt, runtime))
    tracer = traced(trace_to, opt) if trace_to is not None else []
    launcher = [target_script("smoke_launcher"), paths, json.dumps(context), str(smoke_test)]
    command = [python, "-I", "-S", *tracer, *launcher]
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
    ci: bool = False,
    arch: str | None = None,
) -> list[LayerTestResult]:
    """Test every layer zip built for this runtime and `arch` (None: this machine's), bases first.
    `python` runs this machine's arch; another arch's zips run in its interpreter under qemu.

    Raises LayerTestFailed naming every failure at once: a layer the template deploys on this
    runtime without a zip, an unreadable zip, a failed import, version or smoke check.
    Returns [] only when there is nothing to test and skipping is allowed (see layer_test_plan).
    """
    runtime = RUNTIMES[runtime_name]
    paths = BuildPaths.of(project.root)
    host = os.uname().machine
    plan = layer_test_plan(project, runtime_name, host, ci, arch)
    for note in plan.notes:
        say(note)
    results = []
    for run_arch, name in plan.runs:
        output_dir = paths.output_dir(runtime_name, run_arch)
        # The plan only runs an arch whose interpreter exists here (layer_test_plan.arch_runs_here).
        runner = target_interpreter(runtime_name, run_arch, python, host) or python
        if runner != python:
            say(f"{name} ({runtime_name}, {run_arch}): running in {runner} (under qemu; slower than native)")
        try:
            layer = project.layer(name)
            host_python = python if runner != python else None
            result = test_layer(
                project, layer, runtime, run_arch, runner, output_dir, paths.pip_cache, say, find_links, host_python
            )
        except LayerTestFailed as exc:
            result = LayerTestResult(name, runtime_name, run_arch, failures=[str(exc)])
        say(
            f"{name} ({runtime_name}, {run_arch}): {result.modules_checked} modules import unstripped; "
            f"{result.removed_on_purpose} removed on purpose by strip rules, "
            + (f"{result.pruned_on_purpose} pruned on purpose by [prune], " if result.pruned_on_purpose else "")
            + f"{result.allowed_failures} allowed "
            f"to fail, {len(result.failures)} failures",
        )
        results.append(result)
    failures = [f"  - {missing}" for missing in plan.missing]
    failures += [
        f"  - {r.layer} ({r.runtime}, {r.arch}):\n      " + "\n      ".join(r.failures) for r in results if not r.ok
    ]
    if failures:
        raise LayerTestFailed(f"layer_tests failed on {runtime_name}:\n" + "\n".join(failures))
    return results
