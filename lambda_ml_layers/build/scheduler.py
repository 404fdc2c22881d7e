"""Which layers build when: independent layers in parallel, each from the cache when its
inputs are unchanged; a layer waits for its base layers only to verify on top of them.
A fault in one layer stops the others; Ctrl-C stops them all and keeps the finished ones
in the cache."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future, ThreadPoolExecutor

from ..config.project import LayerConfig
from ..core.errors import BuildInterrupted, LayerToolError
from ..core.notices import Notice
from ..core.runtimes import MB
from ..core.write_errors import write_failure
from .artifacts import LayerBuild
from .cache import entry_problem, lookup
from .context import BuildContext
from .layer_steps import build_fresh

INTERRUPTED = (
    "Interrupted: unfinished layers were discarded and nothing was published (the published zips and "
    "reports are as the last good build left them); finished layers are cached, so the next build "
    "resumes from there."
)


def wait_for_base(
    ctx: BuildContext, layer: LayerConfig, base: LayerConfig, futures: dict[str, Future[LayerBuild]]
) -> LayerBuild:
    """A layer is verified on top of its base layers, so it waits for them here, and only here."""
    future = futures[base.name]
    waited = not future.done()
    if waited:
        ctx.say(Notice.step(layer.name, "waiting for base layer", base.name))
    try:
        built = future.result()
    except LayerToolError:
        ctx.say(Notice.step(layer.name, "not built", f"base layer {base.name} failed"))
        raise LayerToolError(f"Layer {layer.name} was not built: its base layer {base.name} failed.") from None
    if waited:
        ctx.say(Notice.step(layer.name, "verifying imports"))
    return built


def from_cache(ctx: BuildContext, layer: LayerConfig, key: str) -> LayerBuild | None:
    """The cached build of these exact inputs, if there is one and its zip still has the sha256 its
    manifest records; a damaged entry is reported and rebuilt (the rebuild replaces it)."""
    entry = lookup(ctx.paths.cache, layer.name, key)
    if entry is None:
        return None
    problem = entry_problem(entry)
    if problem is None:
        try:
            return LayerBuild.from_manifest(entry.manifest(), entry.zip_path, True, 0.0)
        except (TypeError, ValueError, KeyError) as exc:  # a manifest from another engine's schema
            problem = f"its manifest.json does not describe a build ({type(exc).__name__}: {exc})"
    ctx.say(Notice.warning(layer.name, f"cache entry {entry.folder} is damaged: {problem}; rebuilding it"))
    ctx.say(Notice.step(layer.name, "rebuilding", "damaged cache entry"))
    return None


def build_one(ctx: BuildContext, layer: LayerConfig, key: str, futures: dict[str, Future[LayerBuild]]) -> LayerBuild:
    """One layer, from the cache or built afresh; any failure names the layer."""
    started = time.monotonic()
    cached = None if ctx.force else from_cache(ctx, layer, key)
    if cached is not None:
        ctx.say(Notice.step(layer.name, "cached", f"unchanged inputs; {cached.verification}"))
        return dataclasses.replace(cached, seconds=time.monotonic() - started)
    try:
        result = build_fresh(ctx, layer, key, lambda base: wait_for_base(ctx, layer, base, futures))
    except LayerToolError:
        ctx.say(Notice.step(layer.name, "failed"))
        raise
    except Exception as exc:  # a disk, OS or engine fault: stop the other layers too, and say where
        ctx.cancel.set()
        ctx.say(Notice.step(layer.name, "failed"))
        failure = write_failure(exc) if isinstance(exc, OSError) else None
        if failure is not None:
            raise type(failure)(f"Layer {layer.name}: {failure}") from None
        raise LayerToolError(
            f"Layer {layer.name} failed unexpectedly: {type(exc).__name__}: {exc}. Nothing of it was kept; "
            f"if this repeats, run with --jobs 1 and report the message."
        ) from exc
    ctx.say(Notice.step(layer.name, "built", f"{result.unzipped_bytes / MB:.1f} MB unzipped; {result.verification}"))
    return result


def run_builds(ctx: BuildContext, layers: list[LayerConfig], keys: dict[str, str], jobs: int) -> dict[str, LayerBuild]:
    """Build every layer (bases first in `layers`); raise once naming every layer that failed."""
    futures: dict[str, Future[LayerBuild]] = {}
    executor = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="layer")
    try:
        for layer in layers:  # bases first, so a waiting layer never starves its base of a worker
            futures[layer.name] = executor.submit(build_one, ctx, layer, keys[layer.name], futures)
        results: dict[str, LayerBuild] = {}
        errors: dict[str, LayerToolError] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except LayerToolError as exc:
                errors[name] = exc
    except KeyboardInterrupt:
        ctx.cancel.set()
        executor.shutdown(wait=True, cancel_futures=True)
        raise BuildInterrupted(INTERRUPTED) from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    # A layer stopped because the build was cancelled is a consequence: report the causes.
    causes = {name: error for name, error in errors.items() if not isinstance(error, BuildInterrupted)}
    if errors and not causes:
        raise BuildInterrupted(INTERRUPTED)  # a step saw Ctrl-C first (it reaches child processes too)
    if causes:
        raise combined_failure(causes)
    return results


def combined_failure(causes: dict[str, LayerToolError]) -> LayerToolError:
    """One error for the whole build that keeps each layer's own: one failure is raised as it is;
    several are listed layer by layer with their kind and exit code, and the build exits with the
    code of the first failed layer in build order (`causes` is in that order)."""
    if len(causes) == 1:
        return next(iter(causes.values()))
    first_name, first = next(iter(causes.items()))
    sections = [
        f"Layer {name} failed ({type(error).__name__}, exit code {error.exit_code}):\n  "
        + str(error).replace("\n", "\n  ")
        for name, error in causes.items()
    ]
    heading = (
        f"{len(causes)} layers failed: {', '.join(causes)}. Each is reported below with its own error; "
        f"the exit code is {first_name}'s ({first.exit_code}), the first failed layer in build order."
    )
    return type(first)("\n\n".join([heading, *sections]))
