"""`inv build-layers`: one orchestrating function over the steps, each in its own module.

config -> lock check -> install (target platform) -> dedupe against base layers
       -> strip -> trim AWS SDK data -> bytecode -> zip -> verify -> size gates -> report
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from .aws_sdk_trim import trim_aws_sdk
from .build_cache import layer_key, lookup, prune, store
from .build_lock import exclusive_build
from .bytecode import compile_bytecode
from .config import LayerConfig, ProjectConfig, base_layers_of, build_order, load_project
from .errors import (
    BuildInterrupted,
    ConfigError,
    LayerToolError,
    LockError,
    SizeGateError,
    VerifyError,
)
from .function_deps import check_function_requirements
from .interpreters import find_interpreter
from .layer_contents import load_locks, modules_to_verify, packages_to_install, provided_by_base
from .layer_tree import (
    StepResult,
    owner_of_paths,
    read_distributions,
    remove_files,
    size_by_package,
    walk_files,
)
from .layer_zip import extract, sha256_of, unzipped_size, write_zip
from .locks import LayerLock
from .paths import BuildPaths
from .pip_runner import install_for_target
from .progress import BuildProgress
from .report import print_report, report_data, write_report
from .runtimes import ARCHES, MB, RUNTIMES, Runtime
from .sam_template import function_specs, template_functions, template_layer_failures
from .shared_objects import strip_shared_objects
from .size_gates import (
    FunctionTotal,
    LayerFacts,
    function_failures,
    function_totals,
    layer_budget_failures,
)
from .strip_rules import plan_strip
from .verify import check_layer

TEMPLATE = Path("infra/template.yaml")


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


@dataclass(frozen=True)
class LayerBuild:
    """A built layer as the report and the gates see it (also its cache manifest)."""

    name: str
    runtime: str
    arch: str
    key: str
    sha256: str
    files: int
    unzipped_bytes: int
    zipped_bytes: int
    budget_bytes: int
    target_bytes: int | None
    packages: dict[str, str]
    provided_by_base: dict[str, str]
    package_bytes: dict[str, int]
    steps: list[dict[str, Any]]
    verified: bool
    zip_path: str = ""
    cache_hit: bool = False
    seconds: float = 0.0

    def manifest(self) -> dict[str, Any]:
        data = asdict(self)
        for transient in ("zip_path", "cache_hit", "seconds"):
            data.pop(transient)
        return data

    @classmethod
    def from_manifest(cls, data: dict[str, Any], zip_path: Path, cache_hit: bool, seconds: float) -> LayerBuild:
        return cls(**data, zip_path=str(zip_path), cache_hit=cache_hit, seconds=seconds)


@dataclass
class BuildContext:
    project: ProjectConfig
    runtime: Runtime
    arch: str
    python: str
    interpreter_version: str
    locks: dict[str, LayerLock]
    paths: BuildPaths
    progress: BuildProgress
    force: bool
    find_links: Path | None
    cancel: threading.Event = field(default_factory=threading.Event)

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise BuildInterrupted("Build interrupted.")


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


def _interpreter_version(python: str) -> str:
    result = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True)
    return result.stdout.strip()


def _step_dict(step: StepResult) -> dict[str, Any]:
    return {
        "step": step.step,
        "files_removed": step.files_removed,
        "bytes_removed": step.bytes_removed,
        "notes": list(step.notes),
        "by_rule": {k: {"files": v[0], "bytes": v[1]} for k, v in step.by_rule.items()},
    }


def _strip(site: Path, layer: LayerConfig) -> StepResult:
    plan = plan_strip([rel for rel, _ in walk_files(site)], layer.strip_rules, layer.protect)
    by_rule = {rule: (len(paths), remove_files(site, paths)) for rule, paths in plan.items()}
    return StepResult(
        "strip",
        files_removed=sum(files for files, _ in by_rule.values()),
        bytes_removed=sum(size for _, size in by_rule.values()),
        by_rule=by_rule,
    )


def _verify(
    ctx: BuildContext,
    layer: LayerConfig,
    zip_file: Path,
    stage: Path,
    modules: list[str],
    base_futures: dict[str, Future[LayerBuild]],
) -> StepResult:
    """Extract the base layers and this one as Lambda would into /opt, then import everything."""
    if ARCHES[ctx.arch] != os.uname().machine:
        why = f"skipped import verification: {ctx.arch} code cannot run on this {os.uname().machine} machine"
        return StepResult("verify", notes=(why,))
    opt = stage / "opt"
    for base in base_layers_of(ctx.project, layer):
        extract(Path(_wait_for_base(ctx, layer, base, base_futures).zip_path), opt)
    extract(zip_file, opt)
    versions = {
        name: package.version
        for source in [layer, *base_layers_of(ctx.project, layer)]
        for name, package in ctx.locks[source.name].packages.items()
    }
    outcome = check_layer(ctx.python, opt, ctx.runtime, modules, versions)
    if not outcome.ok:
        lines = [f"import {module}: {error}" for module, error in sorted(outcome.import_failures.items())]
        lines += [
            f"{name}: lock says {locked}, installed metadata says {found or 'nothing (dist-info missing)'}"
            for name, (locked, found) in sorted(outcome.version_mismatches.items())
        ]
        raise VerifyError(
            f"Layer {layer.name} failed verification in {ctx.runtime.name}, so it was not written:\n"
            + "\n".join(f"    {line}" for line in lines)
            + f"\n  Fix: a strip rule probably removed something these modules need; add a `keep` "
            f"pattern in layers/defaults.toml or layers/{layer.name}/layer.toml, or list the module "
            f"under [verify] skip_imports with a reason if it is an optional extra."
        )
    return StepResult("verify", notes=(f"{len(modules)} modules imported, {len(versions)} versions match the lock",))


def _wait_for_base(
    ctx: BuildContext, layer: LayerConfig, base: LayerConfig, base_futures: dict[str, Future[LayerBuild]]
) -> LayerBuild:
    """A layer is verified on top of its base layers, so it waits for them here, and only here."""
    future = base_futures[base.name]
    waited = not future.done()
    if waited:
        ctx.progress.step(layer.name, "waiting for base layer", base.name)
    try:
        built = future.result()
    except LayerToolError:
        ctx.progress.step(layer.name, "not built", f"base layer {base.name} failed")
        raise LayerToolError(f"Layer {layer.name} was not built: its base layer {base.name} failed.") from None
    if waited:
        ctx.progress.step(layer.name, "verifying imports")
    return built


def _build_fresh(
    ctx: BuildContext, layer: LayerConfig, key: str, base_futures: dict[str, Future[LayerBuild]]
) -> LayerBuild:
    started = time.monotonic()
    ctx.paths.tmp.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=ctx.paths.tmp, prefix=f"{layer.name}-"))
    progress = ctx.progress
    try:
        site = stage / "python"
        provided = provided_by_base(ctx.project, ctx.locks, layer)
        lock = ctx.locks[layer.name]
        wanted = packages_to_install(ctx.project, ctx.locks, layer)
        from_base = {name: provided[name] for name in lock.packages if name in provided}
        steps = [
            StepResult(
                "dedupe",
                notes=tuple(f"{name} comes from {base}" for name, base in sorted(from_base.items())),
            )
        ]
        progress.step(layer.name, "installing", f"{len(wanted)} packages")
        install_for_target(
            wanted,
            site,
            ctx.runtime,
            ctx.arch,
            ctx.paths.pip_cache,
            ctx.find_links,
            on_line=lambda line: (
                progress.detail(layer.name, line)
                if line.startswith(("Collecting", "Downloading", "Installing", "Using cached"))
                else None
            ),
        )
        ctx.check_cancel()
        owners = owner_of_paths(read_distributions(site))
        modules = modules_to_verify(site, layer)
        progress.step(layer.name, "stripping")
        steps.append(_strip(site, layer))
        steps.append(trim_aws_sdk(site, layer.aws_services))
        ctx.check_cancel()
        if layer.strip_shared_objects:
            progress.step(layer.name, "stripping shared objects")
            steps.append(strip_shared_objects(site, ctx.python, ctx.arch))
        ctx.check_cancel()
        progress.step(layer.name, "compiling bytecode", layer.bytecode)
        steps.append(compile_bytecode(site, ctx.python, layer.bytecode, "/opt/python"))
        ctx.check_cancel()
        progress.step(layer.name, "zipping")
        zip_file = stage / "layer.zip"
        write_zip(site, zip_file)
        progress.step(layer.name, "verifying imports")
        verify = _verify(ctx, layer, zip_file, stage, modules, base_futures)
        progress.step(layer.name, "verified")
        steps.append(verify)
        ctx.check_cancel()
        files, unzipped = unzipped_size(zip_file)
        build = LayerBuild(
            name=layer.name,
            runtime=ctx.runtime.name,
            arch=ctx.arch,
            key=key,
            sha256=sha256_of(zip_file),
            files=files,
            unzipped_bytes=unzipped,
            zipped_bytes=zip_file.stat().st_size,
            budget_bytes=layer.budget_bytes,
            target_bytes=layer.target_bytes,
            packages={name: p.version for name, p in sorted(lock.packages.items()) if name not in provided},
            provided_by_base=from_base,
            package_bytes=size_by_package(site, owners),
            steps=[_step_dict(s) for s in steps],
            verified=not verify.notes[0].startswith("skipped"),
        )
        entry = store(ctx.paths.cache, layer.name, key, zip_file, build.manifest())
        prune(ctx.paths.cache, layer.name, keep=key)
        return LayerBuild.from_manifest(build.manifest(), entry.zip_path, False, time.monotonic() - started)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def build_one(
    ctx: BuildContext, layer: LayerConfig, key: str, base_futures: dict[str, Future[LayerBuild]]
) -> LayerBuild:
    started = time.monotonic()
    entry = None if ctx.force else lookup(ctx.paths.cache, layer.name, key)
    if entry is not None:
        ctx.progress.step(layer.name, "cached", "unchanged inputs")
        return LayerBuild.from_manifest(entry.manifest(), entry.zip_path, True, time.monotonic() - started)
    try:
        result = _build_fresh(ctx, layer, key, base_futures)
    except LayerToolError:
        ctx.progress.step(layer.name, "failed")
        raise
    except Exception as exc:  # a disk, OS or engine fault: stop the other layers too, and say where
        ctx.cancel.set()
        ctx.progress.step(layer.name, "failed")
        raise LayerToolError(
            f"Layer {layer.name} failed unexpectedly: {type(exc).__name__}: {exc}. Nothing of it was kept; "
            f"if this repeats, run with --jobs 1 and report the message."
        ) from exc
    ctx.progress.step(layer.name, "built", f"{result.unzipped_bytes / MB:.1f} MB unzipped")
    return result


def cache_keys(ctx: BuildContext, layers: list[LayerConfig]) -> dict[str, str]:
    """Every layer's cache key from its inputs alone (a base layer's key stands in for its zip),
    so no layer waits for another to know whether it must be built. A layer whose lock (or a
    base layer's) is not at hand gets no key."""
    keys: dict[str, str] = {}
    for layer in layers:  # bases first
        base_keys = [keys.get(base.name) for base in base_layers_of(ctx.project, layer)]
        lock = ctx.locks.get(layer.name)
        if lock is None or None in base_keys:
            continue
        keys[layer.name] = layer_key(
            layer,
            lock.text,
            ctx.runtime.name,
            ctx.arch,
            ctx.interpreter_version,
            [k for k in base_keys if k],
            ctx.find_links is not None,
        )
    return keys


def run_builds(
    ctx: BuildContext, layers: list[LayerConfig], jobs: int
) -> tuple[dict[str, LayerBuild], list[LayerToolError]]:
    """Build independent layers in parallel; a layer waits for its base layers only to verify."""
    futures: dict[str, Future[LayerBuild]] = {}
    executor = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="layer")
    try:
        keys = cache_keys(ctx, layers)
        for layer in layers:  # bases first, so a waiting layer never starves its base of a worker
            futures[layer.name] = executor.submit(build_one, ctx, layer, keys[layer.name], futures)
        results: dict[str, LayerBuild] = {}
        errors: list[LayerToolError] = []
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except LayerToolError as exc:
                errors.append(exc)
        return results, errors
    except KeyboardInterrupt:
        ctx.cancel.set()
        executor.shutdown(wait=True, cancel_futures=True)
        raise BuildInterrupted(
            "Interrupted: unfinished layers were discarded; finished ones are cached, "
            "so the next build resumes from there."
        ) from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def publish(build: LayerBuild, output_dir: Path) -> Path:
    """Copy a cached zip to build/layers/<runtime>-<arch>/<layer>.zip (atomically, only if changed),
    with its manifest beside it."""
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{build.name}.zip"
    if not (target.exists() and sha256_of(target) == build.sha256):
        fd, temp = tempfile.mkstemp(dir=output_dir, prefix=f".{build.name}.", suffix=".part")
        os.close(fd)
        try:
            shutil.copyfile(build.zip_path, temp)
            Path(temp).chmod(0o644)
            os.replace(temp, target)
        finally:
            Path(temp).unlink(missing_ok=True)
    manifest = output_dir / f"{build.name}.json"
    temp_manifest = output_dir / f".{build.name}.json.part"
    temp_manifest.write_text(json.dumps(build.manifest(), indent=2, sort_keys=True))
    temp_manifest.replace(manifest)
    return target


def _facts(build: LayerBuild, project: ProjectConfig) -> LayerFacts:
    return LayerFacts(
        name=build.name,
        unzipped_bytes=build.unzipped_bytes,
        budget_bytes=build.budget_bytes,
        packages=build.packages,
        package_bytes=build.package_bytes,
        runtimes=(build.runtime,),
        arch=build.arch,
        base_layers=tuple(base.name for base in base_layers_of(project, project.layer(build.name))),
    )


def _published(output_dir: Path, expected_keys: dict[str, str]) -> dict[str, LayerBuild]:
    """Layers built earlier for this target whose inputs still match: a zip from an older lock
    or older rules would make the function totals lie, so it is not used."""
    found = {}
    for manifest in sorted(output_dir.glob("*.json")):
        zip_path = manifest.with_suffix(".zip")
        try:
            data = json.loads(manifest.read_text())
            build = LayerBuild.from_manifest(data, zip_path, True, 0.0)
        except (ValueError, TypeError, OSError):
            continue  # unreadable or from an older engine: as good as absent
        if zip_path.exists() and expected_keys.get(build.name) == build.key:
            found[build.name] = build
    return found


def unpublish(name: str, output_dir: Path) -> None:
    """Remove a layer's published zip, so no deploy or test picks up one the gates refused."""
    for suffix in (".zip", ".json"):
        (output_dir / f"{name}{suffix}").unlink(missing_ok=True)


def _is_warning(note: str) -> bool:
    """Step notes a user must see in the summary: checks that could not run."""
    return note.startswith(("skipped", "not stripped", "restored"))


def gate_and_report(
    ctx: BuildContext, results: dict[str, LayerBuild], expected_keys: dict[str, str], headroom: int
) -> dict[str, Any]:
    """Apply every size gate, publish the layers that pass, write and print the report."""
    root, paths, runtime, arch = ctx.project.root, ctx.paths, ctx.runtime.name, ctx.arch
    failures = layer_budget_failures([_facts(b, ctx.project) for b in results.values()])
    output_dir = paths.output_dir(runtime, arch)
    for build in results.values():
        if build.unzipped_bytes > build.budget_bytes:
            unpublish(build.name, output_dir)
        else:
            publish(build, output_dir)
    notes: list[str] = []
    totals: list[FunctionTotal] = []
    template = root / TEMPLATE
    functions = template_functions(template) if template.exists() else []
    deployed = sorted({f"{fn.runtime}/{fn.arch}" for fn in functions})
    if functions and deployed != [f"{runtime}/{arch}"]:
        # Layers for another target are fine on their own; the template cannot use them.
        notes.append(
            f"{TEMPLATE} deploys its functions on {', '.join(deployed)}; this build is {runtime}/{arch}, "
            f"so only the layer budgets were checked. Build for {deployed[0]} to check the functions."
        )
    elif functions:
        available = {**_published(output_dir, expected_keys), **results}
        facts = {name: _facts(build, ctx.project) for name, build in available.items()}
        totals = function_totals(functions, facts, headroom)
        failures += function_failures(functions, facts, headroom)
        failures += template_layer_failures(template, runtime, arch, output_dir)
    else:
        notes.append(f"{TEMPLATE} not found: only the layer budgets were checked, no function totals.")
    for build in results.values():
        notes += [f"{build.name}: {note}" for step in build.steps for note in step["notes"] if _is_warning(note)]
    data = report_data(list(results.values()), totals, failures, notes, runtime, arch)
    write_report(paths.build, data)
    print_report(Console(width=None if sys.stdout.isatty() else 140), list(results.values()), totals, notes)
    if failures:
        raise SizeGateError(
            "Size gates failed (every offender is listed; layers over budget are not in "
            f"{output_dir.relative_to(root)}):\n" + "\n".join(f"  - {f}" for f in failures)
        )
    return data


def check_function_packages(project: ProjectConfig) -> None:
    """A function's own requirements must not repeat what its layers provide (checked before building)."""
    template = project.root / TEMPLATE
    if not template.exists():
        return
    known = set(project.layer_names)
    problems = []
    for spec in function_specs(template):
        locks = {name: project.layer(name).lock for name in spec.layers if name in known}
        try:
            check_function_requirements(spec.name, spec.code_dir, locks)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))


def build_layers(request: BuildRequest) -> dict[str, Any]:
    """Build, verify, gate and report; raise a LayerToolError naming every failure at once."""
    project = load_project(request.root)
    runtime, arch = resolve_target(project, request.runtime, request.arch)
    layers = build_order(project, request.layers or None)
    locks = load_locks(project, layers)
    check_function_packages(project)
    python = find_interpreter(runtime)
    paths = BuildPaths(request.root / "build")
    with exclusive_build(paths.build), BuildProgress([layer.name for layer in layers]) as progress:
        shutil.rmtree(paths.tmp, ignore_errors=True)  # left by a build that was killed outright
        ctx = BuildContext(
            project=project,
            runtime=runtime,
            arch=arch,
            python=python,
            interpreter_version=_interpreter_version(python),
            locks=locks,
            paths=paths,
            progress=progress,
            force=request.force,
            find_links=request.find_links,
        )
        try:
            results, errors = run_builds(ctx, layers, request.jobs)
        finally:
            shutil.rmtree(paths.tmp, ignore_errors=True)
    if errors:
        raise type(errors[0])("\n\n".join(str(e) for e in errors))
    at_hand = replace(ctx, locks=_locks_at_hand(project, locks))
    return gate_and_report(ctx, results, cache_keys(at_hand, build_order(project)), request.headroom_bytes)


def _locks_at_hand(project: ProjectConfig, locks: dict[str, LayerLock]) -> dict[str, LayerLock]:
    """This build's locks plus every other layer's that reads cleanly, to recognise which
    earlier-built zips still match their inputs."""
    found = dict(locks)
    for layer in project.layers:
        if layer.name not in found:
            try:
                found.update(load_locks(project, [layer]))
            except LockError:
                continue
    return found
