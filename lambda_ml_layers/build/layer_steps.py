"""The steps that turn one layer's lock into a verified zip in the build cache:

install (target platform) -> dedupe against base layers -> strip -> trim AWS SDK data -> prune ([prune] only)
-> strip shared objects -> share duplicate libraries -> bytecode -> zip -> verify (on top of the base layers) -> cache

Each step is a function in its own module; this one runs them in order in a staging folder
and folds what they did into a `LayerBuild`. Nothing here writes where builds are published (artifacts.py does)."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config.project import LAYER_FILE, LayerConfig, base_layers_of
from ..config.strip_rules import plan_strip, unmatched_rules
from ..core.errors import PrunedModuleMissing, VerifyError
from ..core.layer_tree import (
    StepResult,
    owner_of_paths,
    read_distributions,
    remove_files,
    size_by_package,
    walk_files,
)
from ..core.layer_zip import extract, sha256_of, unzipped_size, write_zip
from ..core.notices import Notice
from .artifacts import LayerBuild
from .aws_sdk_trim import trim_aws_sdk
from .bytecode import compile_bytecode
from .cache import prune, store
from .context import BuildContext
from .layer_contents import modules_to_verify, packages_to_install, provided_by_base
from .module_walk import ModuleWalk, walk_install
from .pip_runner import install_for_target
from .pruning.contract import MAX_SHOWN, PrunedLayer, explain_missing
from .pruning.import_holes import check_import_holes
from .pruning.step import run_prune
from .shared_libraries import share_duplicate_libraries
from .shared_objects import check_target_machine, strip_shared_objects
from .target_imports import check_layer, lambda_sys_path

# Gives a base layer's finished build, waiting for it if need be (the scheduler's business).
WaitForBase = Callable[[LayerConfig], LayerBuild]
# Gives the folder holding the layer's base layers as laid out in /opt (see base_layers_once).
BaseLayers = Callable[[], Path]


PIP_PROGRESS = ("Collecting", "Downloading", "Installing", "Using cached")


def step_dict(step: StepResult) -> dict[str, Any]:
    return {
        "step": step.step,
        "files_removed": step.files_removed,
        "bytes_removed": step.bytes_removed,
        "notes": list(step.notes),
        "warnings": list(step.warnings),
        "by_rule": {k: {"files": v[0], "bytes": v[1]} for k, v in step.by_rule.items()},
    }


def strip(site: Path, layer: LayerConfig) -> StepResult:
    """Delete what the layer's strip rules match (bar `keep` and the protected files)."""
    paths = [rel for rel, _ in walk_files(site)]
    plan = plan_strip(paths, layer.strip_rules, layer.protect)
    # Only the layer's own rules: the inherited ones are general, and may have nothing to do here.
    own = tuple(rule for rule in layer.strip_rules if rule.defined_in == LAYER_FILE)
    unmatched = tuple(
        f"strip rule {rule.name!r} ({layer.folder / LAYER_FILE}) matched no file of the layer, so it removed nothing. "
        f"Fix: check its globs (directories match one folder name, files one file name, paths the whole "
        f"path under python/), or remove the rule."
        for rule in unmatched_rules(paths, own)
    )
    by_rule = {rule: (len(paths), remove_files(site, paths)) for rule, paths in plan.items()}
    return StepResult(
        "strip",
        files_removed=sum(files for files, _ in by_rule.values()),
        bytes_removed=sum(size for _, size in by_rule.values()),
        warnings=unmatched,
        by_rule=by_rule,
    )


def step_warnings(layer: str, steps: list[StepResult]) -> list[Notice]:
    """Every step's warnings, in step order, as notices the progress display and the report show."""
    return [Notice.warning(layer, warning) for step in steps for warning in step.warnings]


_CLIENT_FIX = (
    "\n  A boto3 client needs its service's folder under botocore/data and botocore's shared data "
    "(endpoints.json, partitions.json, _retry.json, sdk-default-configuration.json): keep them, or drop "
    "the service from [aws_sdk] keep_services if the pipeline no longer calls it."
)


def base_layers_once(ctx: BuildContext, layer: LayerConfig, opt: Path, wait_for_base: WaitForBase) -> BaseLayers:
    """`opt` with the layer's base layers extracted into it as Lambda lays them out, on the first
    call only (waiting for their builds then, not before): the module walk imports on them, then
    the verify adds the layer itself on top. `opt` is in the build's stage folder, which
    build_fresh removes however the build ends (a failure or an interrupt alike)."""
    extracted: list[Path] = []

    def bases() -> Path:
        if not extracted:
            for base in base_layers_of(ctx.project, layer):
                extract(Path(wait_for_base(base).zip_path), opt)
            extracted.append(opt)
        return opt

    return bases


def verify(
    ctx: BuildContext,
    layer: LayerConfig,
    zip_file: Path,
    modules: list[str],
    bases: BaseLayers,
    pruned: list[PrunedLayer] | None = None,
) -> tuple[StepResult, bool]:
    """Lay out the base layers and this one as Lambda would in /opt, then import everything.
    Returns the step and whether the check ran (without a target interpreter it cannot; the step
    warns why). For another arch the interpreter runs under qemu (core/toolchains.py).
    A module missing because `pruned` layers removed it fails with the [prune] line to change."""
    python = ctx.toolchain.python
    if python is None:
        why = "; ".join(ctx.toolchain.missing) or f"no {ctx.arch} interpreter of {ctx.runtime.name} here"
        return StepResult("verify", notes=(why,), warnings=(f"not verified: {why}",)), False
    opt = bases()
    extract(zip_file, opt)
    versions = {
        name: package.version
        for source in [layer, *base_layers_of(ctx.project, layer)]
        for name, package in ctx.locks[source.name].packages.items()
    }
    clients = list(layer.aws_services or ())
    # Under qemu every import runs emulated, several times slower than native: the same check, more time.
    timeout = 1800 if ctx.toolchain.emulated else 600
    outcome = check_layer(python, opt, ctx.runtime, modules, versions, timeout=timeout, clients=clients)
    fixes = {m: fix for m, e in outcome.import_failures.items() if (fix := explain_missing(e, pruned or []))}
    if fixes:
        shown = sorted(fixes)[:MAX_SHOWN]
        more = f"\n    ... and {len(fixes) - len(shown)} more" if len(fixes) > len(shown) else ""
        raise PrunedModuleMissing(
            f"Layer {layer.name} failed verification in {ctx.runtime.name}, so it was not written: [prune] removed "
            f"modules that kept ones import:\n"
            + "\n".join(f"    import {m}: {outcome.import_failures[m]}" for m in shown)
            + more
            + "".join(f"\n  {fix}" for fix in dict.fromkeys(fixes[m] for m in sorted(fixes)))  # each fix once
        )
    if not outcome.ok:
        lines = [f"import {module}: {error}" for module, error in sorted(outcome.import_failures.items())]
        lines += [
            f"{name}: lock says {locked}, installed metadata says {found or 'nothing (dist-info missing)'}"
            for name, (locked, found) in sorted(outcome.version_mismatches.items())
        ]
        lines += [
            f"boto3 client {service!r} (kept in [aws_sdk] keep_services): {error}"
            for service, error in sorted(outcome.client_failures.items())
        ]
        raise VerifyError(
            f"Layer {layer.name} failed verification in {ctx.runtime.name}, so it was not written:\n"
            + "\n".join(f"    {line}" for line in lines)
            + f"\n  Fix: a strip rule probably removed something these modules need; add a `keep` "
            f"pattern in layers/defaults.toml or layers/{layer.name}/layer.toml, or list the module "
            f"under [verify] skip_imports with a reason if it is an optional extra."
            + (_CLIENT_FIX if outcome.client_failures else "")
        )
    made = f", {len(clients)} boto3 clients created" if clients else ""
    made += f" (under qemu, {ctx.toolchain.machine})" if ctx.toolchain.emulated else ""
    return StepResult(
        "verify", notes=(f"{len(modules)} modules imported, {len(versions)} versions match the lock{made}",)
    ), True


def walk_modules(
    ctx: BuildContext, layer: LayerConfig, site: Path, stage: Path, bases: BaseLayers
) -> ModuleWalk | None:
    """Import every module of the fresh install, on its base layers (module_walk.py); None where the
    target's binaries cannot run natively here: under qemu the walk would take ten times as long, so
    the verify imports the top-level modules only and says so."""
    if ctx.toolchain.emulated or ctx.toolchain.python is None:
        return None
    base_paths = lambda_sys_path(bases(), ctx.runtime)
    ctx.say(Notice.step(layer.name, "importing every module", "from the plain install"))
    return walk_install(ctx.python, site, layer, base_paths, stage)


def build_fresh(ctx: BuildContext, layer: LayerConfig, key: str, wait_for_base: WaitForBase) -> LayerBuild:
    """Run every step for one layer in a staging folder; store the zip in the cache."""
    started = time.monotonic()
    ctx.paths.tmp.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=ctx.paths.tmp, prefix=f"{layer.name}-"))
    name = layer.name
    try:
        site = stage / "python"
        provided = provided_by_base(ctx.project, ctx.locks, layer)
        lock = ctx.locks[name]
        wanted = packages_to_install(ctx.project, ctx.locks, layer)
        from_base = {package: provided[package] for package in lock.packages if package in provided}
        steps = [StepResult("dedupe", notes=tuple(f"{p} comes from {base}" for p, base in sorted(from_base.items())))]
        ctx.say(Notice.step(name, "installing", f"{len(wanted)} packages"))
        install_for_target(
            wanted,
            site,
            ctx.runtime,
            ctx.arch,
            ctx.paths.pip_cache,
            ctx.find_links,
            on_line=lambda line: ctx.progress.detail(name, line) if line.startswith(PIP_PROGRESS) else None,
        )
        ctx.check_cancel()
        owners = owner_of_paths(read_distributions(site))
        modules = modules_to_verify(site, layer)
        bases = base_layers_once(ctx, layer, stage / "opt", wait_for_base)
        walk = walk_modules(ctx, layer, site, stage, bases)
        ctx.say(Notice.step(name, "stripping"))
        steps.append(strip(site, layer))
        steps.append(trim_aws_sdk(site, layer.aws_services))
        pruned = None
        if layer.prune is not None:
            ctx.say(Notice.step(name, "pruning", f"trace {layer.prune.manifest} + keep"))
            pruned = run_prune(site, layer, layer.prune)
            check_import_holes(site, ctx.python, layer.prune, pruned.layer)
            steps.append(pruned.step)
            modules = sorted({*modules, *pruned.prove})
        ctx.check_cancel()
        check_target_machine(site, ctx.toolchain, name)
        if layer.strip_shared_objects:
            ctx.say(Notice.step(name, "stripping shared objects"))
            steps.append(strip_shared_objects(site, ctx.toolchain, layer.relayout_shared_objects))
        ctx.check_cancel()
        ctx.say(Notice.step(name, "sharing duplicate libraries"))
        steps.append(share_duplicate_libraries(site, ctx.toolchain.python, ctx.arch, ctx.runtime.glibc))
        ctx.check_cancel()
        ctx.say(Notice.step(name, "compiling bytecode", layer.bytecode))
        steps.append(compile_bytecode(site, ctx.python, layer.bytecode, "/opt/python", layer.docstrings))
        ctx.check_cancel()
        ctx.say(Notice.step(name, "zipping"))
        zip_file = stage / "layer.zip"
        write_zip(site, zip_file)
        ctx.say(Notice.step(name, "verifying imports"))
        explain = [pruned.layer] if pruned else []
        deep = walk.without(pruned.plan.pruned_modules if pruned else ()) if walk else []
        verified, ran = verify(ctx, layer, zip_file, sorted({*modules, *deep}), bases, explain)
        if walk:
            verified = dataclasses.replace(verified, notes=(*verified.notes, walk.note()))
        elif ran:
            why = "top-level modules only: every module's import is walked natively, not under qemu"
            verified = dataclasses.replace(verified, notes=(*verified.notes, why))
        steps.append(verified)
        ctx.say(Notice.step(name, "verified") if ran else Notice.step(name, "not verified", verified.notes[0]))
        warnings = step_warnings(name, steps)
        for warning in warnings:
            ctx.say(warning)
        ctx.check_cancel()
        files, unzipped = unzipped_size(zip_file)
        build = LayerBuild(
            name=name,
            runtime=ctx.runtime.name,
            arch=ctx.arch,
            key=key,
            sha256=sha256_of(zip_file),
            files=files,
            unzipped_bytes=unzipped,
            zipped_bytes=zip_file.stat().st_size,
            budget_bytes=layer.budget_bytes,
            target_bytes=layer.target_bytes,
            packages={p: locked.version for p, locked in sorted(lock.packages.items()) if p not in provided},
            provided_by_base=from_base,
            package_bytes=size_by_package(site, owners),
            steps=[pruned.step_dict(step_dict(s)) if pruned and s is pruned.step else step_dict(s) for s in steps],
            verified=ran,
            warnings=tuple(warnings),
        )
        entry = store(ctx.paths.cache, name, key, zip_file, build.manifest())
        prune(ctx.paths.cache, name, keep=key)
        return LayerBuild.from_manifest(build.manifest(), entry.zip_path, False, time.monotonic() - started)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
