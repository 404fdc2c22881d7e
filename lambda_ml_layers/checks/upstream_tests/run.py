"""The session: for each built layer that declares suites, run them unstripped and stripped, compare, report.

For one layer: its zip and its base layers' zips are extracted into a fresh opt/ (Lambda's
order); the same lock is installed plainly beside it; the wheels' test folders are laid
over opt/ (overlay.py); each declared suite runs on both trees in the target interpreter
(pytest_run.py); a test that passes unstripped and fails stripped fails the session, named
with its first error line and the rule that removed what it needed (compare.py).

Another arch's zips (`--arch arm64` on this x86_64 machine) run the same way in that arch's
interpreter under qemu, with the test tools installed for that arch (test_tools); their timings
are labelled as emulated.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...build.layer_contents import load_locks, packages_to_install
from ...build.pip_runner import install_for_target
from ...build.pruning.step import pruned_files
from ...build.target_imports import lambda_sys_path
from ...config.locks import parse_lock
from ...config.project import LayerConfig, ProjectConfig, build_order
from ...config.strip_rules import plan_strip
from ...core.errors import LayerTestFailed, NotVerified
from ...core.layer_tree import Distribution, read_distributions
from ...core.paths import BuildPaths
from ...core.runtimes import ARCHES, RUNTIMES, Runtime
from ...core.toolchains import UNDER_QEMU, timing
from ..layer_checks import extract_built, precompile
from ..layer_test_plan import arch_runs_here, build_command, target_interpreter
from .compare import SuiteComparison, compare_suite, unused_expectations
from .opt_mount import LAMBDA_OPT, at_opt, can_mount_opt
from .overlay import is_test_file, overlay_tests
from .pytest_run import run_suite
from .report import report_data, write_report


def removed_by_rule(own_files: list[str], layer: LayerConfig) -> dict[str, str]:
    """File -> the strip rule that removed it, less the test files laid back (pure)."""
    plan = plan_strip(own_files, layer.strip_rules, layer.protect)
    return {rel: rule for rule, paths in plan.items() for rel in paths if not is_test_file(rel)}


def build_settings_blame(layer: LayerConfig) -> dict[str, str]:
    """Build settings an error can point at when it names no removed file (pure)."""
    blame = {}
    if layer.bytecode == "sourceless":
        blame["bytecode"] = 'bytecode = "sourceless" (no .py source shipped)'
    if layer.docstrings == "strip":
        blame["docstrings"] = 'docstrings = "strip" (compiled without docstrings)'
    return blame


def unstripped_install(
    project: ProjectConfig, layer: LayerConfig, runtime: Runtime, arch: str, scratch: Path
) -> tuple[Path, list[Distribution]]:
    """The layer's own locked packages (less its base layers'), installed plainly once per session."""
    site = scratch / "unstripped" / layer.name / "python"
    if not site.is_dir():
        locks = load_locks(project, build_order(project, [layer.name]))
        packages = packages_to_install(project, locks, layer)
        install_for_target(packages, site, runtime, arch, BuildPaths.of(project.root).pip_cache)
    return site, read_distributions(site)


TEST_TOOLS_LOCK = Path("requirements") / "upstream-tests.txt"


def test_tools(project: ProjectConfig, runtime: Runtime, arch: str, scratch: Path) -> Path:
    """pytest, hypothesis and the rest of requirements/upstream-tests.txt (pure Python, hash-pinned)
    installed for `arch`: an emulated interpreter has no venv, so this folder goes on its sys.path
    after the layers, where the session's venv would be."""
    lock = project.root / TEST_TOOLS_LOCK
    site = scratch / "test-tools" / runtime.name
    if not site.is_dir():
        packages = list(parse_lock(lock.read_text(encoding="utf-8"), str(lock)).values())
        install_for_target(packages, site, runtime, arch, BuildPaths.of(project.root).pip_cache)
    return site


# OpenBLAS (numpy's and scipy's) picks its kernels from the CPU it detects; under qemu 7.2 it picks
# SVE ones that qemu computes wrongly: 94 of numpy's 478 test_linalg.py tests failed in both trees
# (solve, QR, Cholesky: wrong numbers, not rounding), and so proved nothing about the layer. With the
# generic ARMv8 kernels the same tests pass. Lambda's own CPUs are not emulated, so nothing is lost.
EMULATED_ENVIRONMENT = (("OPENBLAS_CORETYPE", "ARMV8"),)


@dataclass(frozen=True)
class Emulation:
    """How another arch's zips run here: its interpreter under qemu, the test tools installed for
    it, and a native interpreter of the same version that compiles the unstripped trees' bytecode."""

    tools: Path
    host_python: str
    environment: tuple[tuple[str, str], ...] = EMULATED_ENVIRONMENT


def test_layer_suites(
    project: ProjectConfig,
    layer: LayerConfig,
    runtime: Runtime,
    arch: str,
    python: str,
    fast: bool,
    scratch: Path,
    say: Callable[[str], None],
    emulation: Emulation | None = None,
) -> list[SuiteComparison]:
    """`scratch` keeps the unstripped installs for the session: a base layer's is installed once.
    `python` runs `arch`'s code (under qemu when `emulation` is given)."""
    suites = [s for s in layer.upstream_tests.suites if not fast or s.fast]
    expected = layer.upstream_tests.expected_on(arch)
    tools = [str(emulation.tools)] if emulation else []
    environment = emulation.environment if emulation else ()
    emulated = emulation is not None
    # The whole selections are tens of thousands of tests: one pytest-xdist worker per core.
    # The fast subsets are a file each, quicker in one process than starting workers.
    workers = 1 if fast else os.cpu_count() or 1
    chain = build_order(project, [layer.name])
    comparisons = []
    with tempfile.TemporaryDirectory(prefix=f"upstream-tests-{layer.name}-", dir=scratch) as temp:
        work = Path(temp)
        opt = work / "opt"
        for member in chain:
            extract_built(BuildPaths.of(project.root).output_dir(runtime.name, arch), member.name, runtime, arch, opt)
        say(f"{layer.name}: the same lock unstripped, and the wheels' tests laid over the layers")
        copied = 0
        reference_paths = []  # the layer first, then its bases: what /opt gives, one folder per layer
        for member in reversed(chain):
            site, dists = unstripped_install(project, member, runtime, arch, scratch)
            reference_paths.append(str(site))
            copied += overlay_tests(site, opt / "python", dists)
            if emulation:
                precompile(emulation.host_python, site)
        say(f"{layer.name}: {copied} test files laid over the layers from the locked wheels (hash-checked)")
        reference_site, own_dists = unstripped_install(project, layer, runtime, arch, scratch)
        own_files = [f for d in own_dists for f in d.files]
        removed = {**removed_by_rule(own_files, layer), **pruned_files(layer, reference_site, own_files)}
        settings = build_settings_blame(layer)
        mount = can_mount_opt()
        if not mount:
            say(
                f"{layer.name}: cannot mount the layers at /opt here (no private mount namespace): they run at "
                f"{opt}, so tests comparing a module's file with its bytecode's /opt/python path fail stripped"
            )
        for suite in suites:
            say(f"{layer.name}: {suite.name} unstripped (budget {suite.budget_s}s)")
            reference = run_suite(
                python,
                suite,
                [*reference_paths, *tools],
                reference_site,
                work,
                fast,
                "unstripped",
                workers=workers,
                environment=environment,
            )
            say(f"{layer.name}: {suite.name} stripped, at {LAMBDA_OPT if mount else opt}")
            stripped_opt, prefix = (LAMBDA_OPT, tuple(at_opt(opt))) if mount else (opt, ())
            stripped_paths = [*lambda_sys_path(stripped_opt, runtime), *tools]
            stripped = run_suite(
                python,
                suite,
                stripped_paths,
                stripped_opt / "python",
                work,
                fast,
                "stripped",
                prefix,
                workers,
                environment,
            )
            comparison = compare_suite(suite.name, reference, stripped, expected, removed, settings)
            say(
                f"{layer.name}: {suite.name}: {comparison.passed_unstripped} passed unstripped in "
                f"{timing(reference.seconds, emulated)}, {comparison.passed_stripped} stripped in "
                f"{timing(stripped.seconds, emulated)}; {comparison.failed_unstripped} failed unstripped too, "
                f"{len(comparison.stripped_only)} stripped-only failures, {len(comparison.expected)} expected"
            )
            comparisons.append(comparison)
    stale = unused_expectations(expected, comparisons) if not fast else []
    if stale:
        say(
            f"{layer.name}: declared expected failures that no test needed (remove them from "
            f"[upstream_tests.expected_failures] in {layer.folder / 'layer.toml'}): {', '.join(stale)}"
        )
    return comparisons


def run_upstream_tests(
    project: ProjectConfig,
    runtime_name: str,
    python: str,
    fast: bool,
    say: Callable[[str], None] = print,
    arch: str | None = None,
) -> dict[str, list[SuiteComparison]] | None:
    """Every built layer of this runtime and `arch` (None: this machine's) with declared suites;
    None if no layer is built for the runtime on this machine's arch. `python` is a native
    interpreter of the runtime; another arch's zips run in that arch's under qemu.
    The report goes to BuildPaths.upstream_tests_report."""
    runtime = RUNTIMES[runtime_name]
    paths = BuildPaths.of(project.root)
    host = os.uname().machine
    native = native_arch()
    arch = arch or native
    output_dir = paths.output_dir(runtime_name, arch)
    wanted = [layer for layer in build_order(project) if any(not fast or s.fast for s in layer.upstream_tests.suites)]
    built = {p.stem for p in output_dir.glob("*.zip")} if output_dir.is_dir() else set()
    if arch == native and not built:
        return None
    emulation = None
    missing = [f"{w.name}: {output_dir / f'{w.name}.zip'} is missing" for w in wanted if w.name not in built]
    if arch != native:
        # Another arch's zips: those not built are named, not tested (a layer over its budget
        # publishes no zip); none at all is a failure naming the build.
        if not built or (wanted and len(missing) == len(wanted)):
            raise LayerTestFailed(
                f"upstream_tests: no {runtime_name}/{arch} layer zip to test in {output_dir}. "
                f"Fix: `{build_command(runtime_name, arch)}` (or with --layer core-data-science for the "
                f"smallest), then run this session again."
            )
        for line in missing:
            say(f"{line}; not tested here (build it with `{build_command(runtime_name, arch)}`)")
        wanted = [layer for layer in wanted if layer.name in built]
    runner = target_interpreter(runtime_name, arch, python, host)
    if runner is None:
        raise NotVerified(
            f"upstream_tests: the {runtime_name}/{arch} layers cannot be tested on this {host} machine: "
            f"{arch_runs_here(runtime_name, arch, host)}. Fix: test a runtime whose {arch} interpreter runs here."
        )
    if arch != native:
        say(f"{runtime_name}/{arch}: running in {runner} ({UNDER_QEMU})")
    results: dict[str, list[SuiteComparison]] = {}
    with tempfile.TemporaryDirectory(prefix="upstream-tests-") as scratch:
        if arch != native:
            tools = test_tools(project, runtime, arch, Path(scratch))
            precompile(python, tools)
            emulation = Emulation(tools, python)
        for layer in wanted:
            results[layer.name] = test_layer_suites(
                project, layer, runtime, arch, runner, fast, Path(scratch), say, emulation
            )
    report = paths.upstream_tests_report(runtime_name, arch, fast)
    not_tested = missing if arch != native else []
    data = report_data(runtime_name, arch, fast, results, can_mount_opt(), emulation is not None, not_tested)
    write_report(report, data)
    say(f"report: {report} and {report.with_suffix('.md').name}")
    return results


def native_arch() -> str:
    """Lambda's name for this machine's architecture."""
    return next(a for a, machine in ARCHES.items() if machine == os.uname().machine)


def has_layers_built(project: ProjectConfig, runtime_name: str, arch: str | None = None) -> bool:
    """Whether a zip is built for the runtime on `arch` (None: this machine's, what a run without
    --arch tests; arm64 zips alone, as `nox -s arm64` leaves them, give it nothing to test)."""
    return any(BuildPaths.of(project.root).output_dir(runtime_name, arch or native_arch()).glob("*.zip"))


def failure_lines(results: dict[str, list[SuiteComparison]]) -> list[str]:
    """One line per stripped-only failure or problem, for the session's error message (pure)."""
    lines = []
    for layer, comparisons in results.items():
        for c in comparisons:
            lines += [f"{layer} {c.suite}: {r.node}: {r.error}\n    removed by: {r.blame}" for r in c.stripped_only]
            lines += [f"{layer}: {p}" for p in c.problems]
    return lines
