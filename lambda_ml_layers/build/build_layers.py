"""`inv build-layers`: the story of one build. Each step is a module (docs/architecture.md):

config -> lock check -> function packages -> cache keys -> per layer, in parallel (scheduler):
    install (target platform) -> dedupe against base layers -> strip -> trim AWS SDK data
    -> strip shared objects -> bytecode -> zip -> verify -> cache          (layer_steps)
-> size gates (gates) -> report -> publish into build/, only if every gate passed (artifacts)
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from ..config.cuda_wheels import cuda_warnings
from ..config.locks import LayerLock
from ..config.project import LayerConfig, ProjectConfig, build_order, load_project
from ..core.build_lock import exclusive_build
from ..core.errors import BuildInterrupted, ConfigError, NotVerified, SizeGateError
from ..core.interpreters import find_interpreter, interpreter_version
from ..core.notices import Notice
from ..core.options import check_build_numbers
from ..core.paths import BuildPaths
from ..core.progress import BuildProgress
from ..core.runtimes import ARCHES, MB, RUNTIMES, Runtime
from ..core.toolchains import find_toolchain
from ..core.write_errors import write_failure
from .artifacts import LayerBuild, keep_failed_report, publish_build, published_builds, stale_outputs
from .cache import cache_keys
from .context import BuildContext
from .gates import apply_gates, check_function_packages, locks_at_hand, needed_targets
from .layer_contents import load_locks
from .pruning.functions import check_function_imports
from .pruning.models import check_model_artifacts
from .report import print_report, report_data, report_texts
from .scheduler import INTERRUPTED, run_builds


@dataclass(frozen=True)
class BuildRequest:
    root: Path
    runtime: str | None = None
    arch: str | None = None
    layers: list[str] = field(default_factory=list)
    jobs: int = 2
    force: bool = False
    headroom_bytes: int = 5 * MB
    find_links: Path | None = None  # install only from this folder of wheels (offline builds, tests)
    accept_unverified: bool = False  # publish layers whose imports could not be checked on this machine


def resolve_target(project: ProjectConfig, runtime: str | None, arch: str | None) -> tuple[Runtime, str]:
    runtime = runtime or project.default_runtime
    arch = arch or project.default_arch
    problems = []
    if runtime not in RUNTIMES:
        problems.append(
            f"--runtime {runtime!r} is not a Lambda Python runtime this tool builds: {', '.join(RUNTIMES)}."
        )
    if arch not in ARCHES:
        problems.append(f"--arch {arch!r} is not one of {', '.join(ARCHES)}.")
    if problems:
        raise ConfigError("\n".join(problems))
    return RUNTIMES[runtime], arch


def build_stage_targets(request: BuildRequest, say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """`inv build-layers`: the given --runtime/--arch target, or without them every target a stage
    deploys on (infra/samconfig.toml's PythonRuntime and Architecture per stage), one build each."""
    if request.runtime is not None or request.arch is not None:
        return [build_layers(request)]
    needed = needed_targets(request.root, load_project(request.root))
    reports = []
    for (runtime, arch), stages in sorted(needed.items()):
        who = f"stage{'s' if len(stages) > 1 else ''} {', '.join(stages)}" if stages else "the default target"
        say(f"Building {runtime}/{arch}: needed by {who}.")
        reports.append(build_layers(replace(request, runtime=runtime, arch=arch)))
    return reports


def _cache_keys(ctx: BuildContext, layers: list[LayerConfig], locks: dict[str, LayerLock]) -> dict[str, str]:
    offline = ctx.find_links is not None
    return cache_keys(ctx.project, layers, locks, ctx.runtime.name, ctx.arch, ctx.interpreter_version, offline)


def build_layers(request: BuildRequest) -> dict[str, Any]:
    """Build, verify, gate, report and publish; raise a LayerToolError naming every failure at once.
    A build that fails or is interrupted publishes nothing."""
    try:
        check_build_numbers(request.jobs, request.headroom_bytes)
        project = load_project(request.root)
        runtime, arch = resolve_target(project, request.runtime, request.arch)
        layers = build_order(project, request.layers or None)
        locks = load_locks(project, layers)
        check_function_packages(project)
        python = find_interpreter(runtime)
        paths = BuildPaths.of(request.root)
        with exclusive_build(paths.build):
            with BuildProgress([layer.name for layer in layers]) as progress:
                shutil.rmtree(paths.tmp, ignore_errors=True)  # left by a build that was killed outright
                ctx = BuildContext(
                    project=project,
                    runtime=runtime,
                    arch=arch,
                    python=python,
                    interpreter_version=interpreter_version(python),
                    locks=locks,
                    paths=paths,
                    progress=progress,
                    force=request.force,
                    find_links=request.find_links,
                    toolchain=find_toolchain(runtime, arch),
                )
                keys = _cache_keys(ctx, layers, locks)
                try:
                    results = run_builds(ctx, layers, keys, request.jobs)
                finally:
                    shutil.rmtree(paths.tmp, ignore_errors=True)
            return _gate_report_publish(ctx, results, request.headroom_bytes, request.accept_unverified)
    except KeyboardInterrupt:
        raise BuildInterrupted(INTERRUPTED) from None
    except OSError as exc:  # the lock, staging, the gates' reads, publishing: a write fault is the user's to fix
        failure = write_failure(exc)
        if failure is None:
            raise
        raise failure from None


def _gate_report_publish(
    ctx: BuildContext, results: dict[str, LayerBuild], headroom: int, accept_unverified: bool = False
) -> dict[str, Any]:
    """Gate this build's layers (with the still-valid published ones it did not rebuild), print the
    report, then publish everything, or, if a gate failed or a layer could not be verified (and that
    was not accepted), nothing but the failed build's report."""
    project, paths, runtime, arch = ctx.project, ctx.paths, ctx.runtime.name, ctx.arch
    output_dir = paths.output_dir(runtime, arch)
    check_function_imports(project, results)  # a pruned layer must still hold what each function imports
    check_model_artifacts(project, results)  # ... and what each model artifact's pickle names
    every_key = _cache_keys(ctx, build_order(project), locks_at_hand(project, ctx.locks))
    gates = apply_gates(project, results, published_builds(output_dir, every_key), runtime, arch, output_dir, headroom)
    builds = list(results.values())
    stale = [] if gates.failures else stale_outputs(output_dir, project.layer_names)
    gates.notices += [
        Notice.warning(name, warning)
        for name in results
        if name in ctx.locks
        for warning in cuda_warnings(name, ctx.locks[name].packages)
    ]
    gates.notices += [
        Notice.notice(f"removed {path.relative_to(project.root)}: no layer {path.stem!r} in layers/ any more")
        for path in stale
    ]
    data = report_data(builds, gates.totals, gates.failures, gates.notices, runtime, arch)
    print_report(Console(width=None if sys.stdout.isatty() else 140), builds, gates.totals, gates.notices)
    report_json, report_md = report_texts(data)
    unverified = [build for build in builds if not build.verified]
    # Not verified comes first: it is the one answer the user must give before any other, and often the
    # cause of a size failure too (a shared object nothing can load-check is not stripped).
    if unverified and not accept_unverified:
        failed = keep_failed_report(paths, runtime, arch, report_json)
        gates_too = (
            "\n  The size gates failed as well (on this unverified build's sizes); with --accept-unverified "
            "they still apply:\n" + "\n".join(f"    - {f}" for f in gates.failures)
            if gates.failures
            else ""
        )
        raise NotVerified(
            f"Not verified, so nothing was published: {len(unverified)} layer(s) for {runtime}/{arch} could not "
            f"be import-checked on this machine; {output_dir.relative_to(project.root)} is as the last good build "
            f"left it, and this build's report is {failed.relative_to(project.root)}.\n"
            + "\n".join(f"  - {build.name}: {build.verification}" for build in unverified)
            + f"\n  Fix: build for a runtime this machine can verify {arch} for (see the reason above), or pass "
            f"--accept-unverified to publish them unchecked (the report then says verified: false)." + gates_too
        )
    if gates.failures:
        failed = keep_failed_report(paths, runtime, arch, report_json)
        raise SizeGateError(
            f"Size gates failed, so nothing was published: {output_dir.relative_to(project.root)} and the reports "
            f"are as the last good build left them; this build's report is {failed.relative_to(project.root)}. "
            f"Every offender:\n" + "\n".join(f"  - {f}" for f in gates.failures)
        )
    is_default = (runtime, arch) == (project.default_runtime, project.default_arch)
    publish_build(paths, runtime, arch, builds, (report_json, report_md), is_default, stale)
    return data
