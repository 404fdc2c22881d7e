"""`inv trace-layers [--check]`: run the traced runs, union per layer, write or check the manifests.

Traced on the default target of layers/defaults.toml (the CI runtime), from the published zips
of the last good build. Nothing is written until every run has passed; then each changed
layers/<layer>/trace.txt is replaced whole (a reader never sees half a file).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..build.shared_objects import needed_libraries
from ..checks.layer_test_plan import build_command
from ..config.project import ProjectConfig, build_order, load_project
from ..config.template import TEMPLATE, function_specs
from ..config.trace_manifest import MANIFEST_NAME, REGENERATE, Trace, changed_lines, render_trace
from ..core.errors import TraceFailed
from ..core.interpreters import find_interpreter
from ..core.paths import BuildPaths
from ..core.runtimes import RUNTIMES, python_lib_dir
from ..local.moto_server import moto_server
from ..local.pipeline_stage import new_bucket
from .attribution import LayerIndex, LayerUsage, attribute, index_layers, merge, zip_files
from .runs import TracedRun, TraceTarget, trace_functions, trace_smoke_test, trace_training

SHOWN_CHANGES = 15  # per layer, in --check's message


@dataclass(frozen=True)
class TraceOutcome:
    traces: dict[str, Trace]
    usage: dict[str, LayerUsage]
    layer_bytes: dict[str, int]  # every file of the layer's zip, unzipped
    covered_bytes: dict[str, int]  # the files of the layer the runs loaded
    changed: list[Path]  # manifests rewritten (none with --check, which fails instead)


def manifest_path(project: ProjectConfig, layer: str) -> Path:
    return project.layer(layer).folder / MANIFEST_NAME


def missing_zips(project: ProjectConfig, output_dir: Path, runtime: str, arch: str) -> list[str]:
    return [
        f"{output_dir / f'{name}.zip'} is missing: run `{build_command(runtime, arch)}` first."
        for name in project.layer_names
        if not (output_dir / f"{name}.zip").is_file()
    ]


def layer_files(output_dir: Path, layer: str, runtime: str, arch: str) -> list[tuple[str, int]]:
    """The built zip's files and sizes; a truncated or foreign zip names itself and the fix."""
    path = output_dir / f"{layer}.zip"
    try:
        return zip_files(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise TraceFailed(
            f"{path} is not a readable zip ({exc}).\n  Fix: `{build_command(runtime, arch)} --force` writes it again."
        ) from None


def committed_text(path: Path) -> str | None:
    """The manifest as committed; None when there is none. Unreadable: TraceFailed naming it."""
    if not path.exists():
        return None
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFailed(f"{path} cannot be read ({exc}).\n  Fix: remove it and run `{REGENERATE}`.") from None


def union(
    runs: list[TracedRun], files: dict[str, list[tuple[str, int]]], import_roots: list[str]
) -> dict[str, LayerUsage]:
    """Pure: every run's records attributed to the layers of its opt/, merged per layer."""
    total: dict[str, LayerUsage] = {}
    for run in runs:
        index: LayerIndex = index_layers((layer, files[layer]) for layer in run.layers)
        for record in run.records:
            merge(total, attribute(record, index, import_roots))
    return total


def libraries_needs(layer_zip: Path, libraries: set[str], scratch: Path) -> dict[str, tuple[str, ...]]:
    """DT_NEEDED of each library (paths relative to python/), read from a copy out of the zip."""
    needs = {}
    with zipfile.ZipFile(layer_zip) as archive:
        for library in sorted(libraries):
            copy = Path(archive.extract(f"python/{library}", scratch))
            needs[library] = tuple(sorted(needed_libraries(copy, TraceFailed)))
    return needs


def run_all(target: TraceTarget, project: ProjectConfig) -> list[TracedRun]:
    """Every traced run, with progress: the smoke tests, then (on one moto server) the training
    and the functions, which load the model the training uploaded."""
    say = target.say
    runs: list[TracedRun] = []

    def timed(what: str, run: Callable[[], list[TracedRun]]) -> None:
        say(f"trace: {what}")
        started = time.monotonic()
        runs.extend(run())
        say(f"trace: {what}: {time.monotonic() - started:.1f} s")

    def smoke_test(name: str) -> Callable[[], list[TracedRun]]:
        return lambda: [trace_smoke_test(target, project, name)]

    for name in project.layer_names:
        timed(f"smoke test {name}", smoke_test(name))
    with moto_server() as server:
        bucket = new_bucket(server.client("s3"), "trace-models")
        every_layer = [layer.name for layer in build_order(project)]
        timed("model training on the sample", lambda: [trace_training(target, every_layer, server, bucket)])
        specs = function_specs(target.root / TEMPLATE)
        timed("the functions in the sandbox", lambda: trace_functions(target, specs, server, bucket))
    return runs


def trace_layers(root: Path, check: bool = False, say: Callable[[str], None] = print) -> TraceOutcome:
    """Trace every layer on the default target; write the manifests, or (check) fail if any is stale."""
    project = load_project(root)
    runtime, arch = RUNTIMES[project.default_runtime], project.default_arch
    output_dir = BuildPaths.of(root).output_dir(runtime.name, arch)
    missing = missing_zips(project, output_dir, runtime.name, arch)
    if missing:
        raise TraceFailed("`inv trace-layers` traces the built layers:\n" + "\n".join(f"  - {m}" for m in missing))
    files = {name: layer_files(output_dir, name, runtime.name, arch) for name in project.layer_names}
    with tempfile.TemporaryDirectory(prefix="trace-layers-") as scratch:
        target = TraceTarget(root, runtime, arch, find_interpreter(runtime), output_dir, Path(scratch), say)
        runs = run_all(target, project)
        usage = union(runs, files, [python_lib_dir(runtime), "python"])
        traces = {}
        for name in project.layer_names:
            used = usage.setdefault(name, LayerUsage())
            needs = libraries_needs(output_dir / f"{name}.zip", used.libraries, Path(scratch) / "needs" / name)
            labels = frozenset(run.label for run in runs if name in run.layers)
            traces[name] = Trace(
                name, runtime.name, arch, labels, frozenset(used.modules), frozenset(used.files), needs
            )
    layer_bytes = {name: sum(size for _, size in files[name]) for name in project.layer_names}
    covered = {name: sum(size for path, size in files[name] if path in usage[name].covered) for name in files}
    outcome = TraceOutcome(traces, usage, layer_bytes, covered, [])
    for line in summary(outcome):
        say(line)
    return check_manifests(project, outcome) if check else write_manifests(project, outcome)


def summary(outcome: TraceOutcome) -> list[str]:
    lines = []
    for name, trace in outcome.traces.items():
        covered = outcome.covered_bytes[name]
        total = outcome.layer_bytes[name]
        share = covered / total if total else 0.0
        lines.append(
            f"{name}: modules {len(trace.modules)}, files {len(trace.files)}, libraries {len(trace.libraries)}; "
            f"{covered / 1e6:.1f} of {total / 1e6:.1f} MB of the layer loaded ({share:.0%})"
        )
    return lines


def check_manifests(project: ProjectConfig, outcome: TraceOutcome) -> TraceOutcome:
    problems = []
    for name, trace in outcome.traces.items():
        path = manifest_path(project, name)
        committed = committed_text(path)
        changes = changed_lines(committed, render_trace(trace))
        if changes:
            shown = "\n".join(f"      {line}" for line in changes[:SHOWN_CHANGES])
            more = f"\n      ... and {len(changes) - SHOWN_CHANGES} more" if len(changes) > SHOWN_CHANGES else ""
            state = "is stale" if committed is not None else "is missing"
            problems.append(
                f"{path.relative_to(project.root)} {state}; {len(changes)} lines would change:\n{shown}{more}"
            )
    if problems:
        body = "\n".join(f"  - {p}" for p in problems)
        raise TraceFailed(
            f"The committed trace manifests do not match what the layers' users load now:\n{body}\n"
            f"  Fix: run `{REGENERATE}`, review the diff and commit it."
        )
    return outcome


def write_manifests(project: ProjectConfig, outcome: TraceOutcome) -> TraceOutcome:
    """Every changed manifest written beside itself first, then each renamed into place."""
    texts = {manifest_path(project, name): render_trace(trace) for name, trace in outcome.traces.items()}
    changed = [path for path, text in texts.items() if committed_text(path) != text]
    partials = {path: path.with_name(f".{path.name}.part") for path in changed}
    written: list[Path] = []
    try:
        for path, partial in partials.items():
            partial.write_text(texts[path])
            written.append(partial)
        for path, partial in partials.items():
            os.replace(partial, path)
    except OSError as exc:
        for partial in written:
            with contextlib.suppress(OSError):  # already renamed, or its folder went read-only
                partial.unlink()
        raise TraceFailed(
            f"Could not write the trace manifests ({exc}).\n  Fix: make {project.root / 'layers'} writable "
            f"and run `{REGENERATE}` again."
        ) from None
    return TraceOutcome(outcome.traces, outcome.usage, outcome.layer_bytes, outcome.covered_bytes, changed)
