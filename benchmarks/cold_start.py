"""Cold-start benchmark: each function's init time in the Lambda-like sandbox, per layer recipe.

    .venv/bin/python benchmarks/cold_start.py [--runs 7] [--events real|wrong-shape] [--compare-with DIR]

For every function of infra/template.yaml it starts N fresh sandboxes (lambda_ml_layers.sandbox:
task/ and opt/ laid out read-only, the target python3.12 isolated from the host, `-B`) with

  (a) unstripped  each layer's lock installed by the engine's own install step
                  (pip_runner.install_for_target: --no-compile, so source only, nothing
                  removed), minus what its base layers provide, as the build dedupes, and
                  zipped by layer_zip.write_zip; what SAM or a plain `pip install -t` ships;
  (b) built       the zips `inv build-layers` published (BuildPaths.output_dir).

Init time is the sandbox's `init_seconds`: interpreter start to handler module imported,
Lambda's "Init Duration". Runs are interleaved A/B, B/A, ... per function, so both recipes
share the machine's noise. Each sandbox gets one invocation; its peak RSS is the memory
figure. With `--events real` (default) the invocation is the real pipeline on the sample
batch against a local moto server (DataValidation's S3 event, then each function's output
as the next one's event; the model trained by lambda_ml_layers.training); with
`--events wrong-shape` it is an event every handler refuses at once (cheap; memory is then
about what the imports take).

With `--compare-with DIR` the zips in DIR (`<layer>.zip`, e.g. a copy of an earlier build's
output) take the place of (a), to put a change's before and after side by side in one run; the
table then goes to cold_start-compare.md and .json, and `inv cold-starts`'s figures are left alone.

Prints the table, and writes it to build/benchmarks/cold_start.md and .json. A measurement,
not a test: the issue's goal (built init at most 1/3 of unstripped) is reported, not asserted.
The unstripped zips are kept in build/benchmarks/cold_start-unstripped/, keyed by what
was installed, so a second run does not reinstall them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the engine package is not installed in .venv

from lambda_ml_layers.build.build_layers import resolve_target  # noqa: E402
from lambda_ml_layers.build.layer_contents import load_locks, packages_to_install  # noqa: E402
from lambda_ml_layers.build.pip_runner import install_for_target, requirement_lines  # noqa: E402
from lambda_ml_layers.config.project import LayerConfig, ProjectConfig, base_layers_of, build_order, load_project  # noqa: E402
from lambda_ml_layers.config.template import FunctionSpec, function_specs  # noqa: E402
from lambda_ml_layers.core.errors import LayerToolError  # noqa: E402
from lambda_ml_layers.core.interpreters import find_interpreter  # noqa: E402
from lambda_ml_layers.core.layer_zip import sha256_of, unzipped_size, write_zip  # noqa: E402
from lambda_ml_layers.core.paths import BuildPaths  # noqa: E402
from lambda_ml_layers.core.runtimes import ARCHES, MB, Runtime  # noqa: E402
from lambda_ml_layers.local.moto_server import DUMMY_CREDENTIALS, MotoServer, moto_server  # noqa: E402
from lambda_ml_layers.local.pipeline_stage import (  # noqa: E402
    create_card_history_table,
    function_environment,
    new_bucket,
    s3_created_event,
    upload_trained_model,
)
from lambda_ml_layers.local.sandbox import Invocation, LambdaSandbox  # noqa: E402

TEMPLATE = ROOT / "infra" / "template.yaml"
SAMPLE = ROOT / "data" / "sample" / "transactions.csv"
PATHS = BuildPaths.of(ROOT)
OUT_DIR = PATHS.benchmarks
UNSTRIPPED_DIR = OUT_DIR / "cold_start-unstripped"
GOAL_RATIO = 1 / 3  # issue 4: built init at most a third of the unstripped source-only one
VARIANTS = ("unstripped", "built")
WRONG_SHAPE_EVENT = ["a wrong-shape event: every handler refuses it before touching S3"]
PIPELINE_ORDER = ("DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction", "MergeFunction")
MERGE = "MergeFunction"
VALIDATION_RESULT_TO = "FeatureEngineeringFunction"  # the event FeatureEngineering got is DataValidation's result


def log(message: str) -> None:
    print(f"[cold_start] {message}", file=sys.stderr, flush=True)


# --- (a) the unstripped, source-only layers --------------------------------------------


def unstripped_zips(project: ProjectConfig, layers: list[LayerConfig], runtime: Runtime, arch: str) -> dict[str, Path]:
    """Each layer's lock minus its base layers' packages, installed by the engine's install step
    and zipped by its zip writer, untouched in between. Reused while the inputs are the same."""
    locks = load_locks(project, layers)
    pip_cache = PATHS.pip_cache
    UNSTRIPPED_DIR.mkdir(parents=True, exist_ok=True)
    zips = {}
    for layer in layers:
        bases = [base.name for base in base_layers_of(project, layer)]
        wanted = packages_to_install(project, locks, layer)
        key = hashlib.sha256(f"{runtime.name} {arch}\n{requirement_lines(wanted)}".encode()).hexdigest()[:16]
        zip_path = UNSTRIPPED_DIR / f"{layer.name}-{key}.zip"
        if not zip_path.exists():
            log(f"installing {layer.name} unstripped ({len(wanted)} packages, {', '.join(bases) or 'no'} base)")
            with tempfile.TemporaryDirectory(prefix=f"cold-start-{layer.name}-") as temp:
                site = Path(temp) / "python"
                install_for_target(wanted, site, runtime, arch, pip_cache)
                write_zip(site, zip_path)
        for stale in UNSTRIPPED_DIR.glob(f"{layer.name}-*.zip"):
            if stale != zip_path and re.fullmatch(rf"{re.escape(layer.name)}-[0-9a-f]{{16}}\.zip", stale.name):
                stale.unlink()
        zips[layer.name] = zip_path
    return zips


def built_zips(layers: list[LayerConfig], runtime: Runtime, arch: str, output: Path | None = None) -> dict[str, Path]:
    output = output or PATHS.output_dir(runtime.name, arch)
    missing = [layer.name for layer in layers if not (output / f"{layer.name}.zip").exists()]
    if missing:
        raise LayerToolError(
            f"{output} lacks {', '.join(missing)}.zip: run `inv build-layers --runtime {runtime.name} "
            f"--arch {arch}` first."
        )
    return {layer.name: output / f"{layer.name}.zip" for layer in layers}


# --- events ------------------------------------------------------------------------------


@dataclass
class Events:
    """The event each function is invoked with, and the environment its sandbox gets."""

    by_function: dict[str, Any]
    environment: dict[str, str]
    description: str


def real_events(
    server: MotoServer, specs: dict[str, FunctionSpec], zips: dict[str, Path], python: str, runtime: Runtime
) -> Events:
    """Upload the sample batch and a freshly trained model to the moto server, then run the
    pipeline once on the built layers: each function's result is the next one's event, and Merge
    gets DataValidation's result (what the state machine hands it after the Map)."""
    s3 = server.client("s3")
    data_bucket = new_bucket(s3, "data", versioned=True, prefix="bench")
    model_bucket = new_bucket(s3, "models", prefix="bench")
    log("training the model with the project's training code and uploading it to the moto server")
    with tempfile.TemporaryDirectory(prefix="cold-start-model-") as out, stdout_to_stderr():
        upload_trained_model(server, ROOT, model_bucket, Path(out))
    key = "incoming/benchmark/sample.csv"
    version = s3.put_object(Bucket=data_bucket, Key=key, Body=SAMPLE.read_bytes()).get("VersionId")
    table = create_card_history_table(server, TEMPLATE, prefix="bench")
    environment = function_environment(server, model_bucket, table)
    events: dict[str, Any] = {}
    event: Any = s3_created_event(data_bucket, key, version)
    for name in PIPELINE_ORDER:
        events[name] = events[VALIDATION_RESULT_TO] if name == MERGE else event
        spec = specs[name]
        with LambdaSandbox(spec, [zips[layer] for layer in spec.layers], python, runtime, environment) as sandbox:
            invocation = sandbox.invoke(events[name])
        if not invocation.ok or invocation.result.get("status") not in ("passed", "ok"):
            raise LayerToolError(
                f"{name} failed on the sample batch: {invocation.error or invocation.result}\n{invocation.logs[-2000:]}"
            )
        event = invocation.result
    missing = sorted(set(specs) - set(events))
    if missing:
        raise LayerToolError(f"The template has functions this benchmark has no real event for: {missing}")
    return Events(events, environment, f"real pipeline events on {SAMPLE.relative_to(ROOT)} against a moto server")


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """What child processes print (the trainer's metrics) goes to stderr: stdout is the table."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextmanager
def pipeline_events(
    kind: str, specs: dict[str, FunctionSpec], zips: dict[str, Path], python: str, runtime: Runtime
) -> Iterator[Events]:
    if kind == "wrong-shape":
        yield Events({name: WRONG_SHAPE_EVENT for name in specs}, dict(DUMMY_CREDENTIALS), "a wrong-shape event")
        return
    with moto_server() as server:
        yield real_events(server, specs, zips, python, runtime)


# --- measuring ---------------------------------------------------------------------------


@dataclass
class Sample:
    init_seconds: float
    import_seconds: float
    max_memory_mb: float
    extracted_bytes: int
    outcome: str  # the result's status, or the error type


@dataclass
class FunctionResult:
    name: str
    layers: list[str]
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {v: [] for v in VARIANTS})

    def median_init(self, variant: str) -> float:
        return statistics.median(s.init_seconds for s in self.samples[variant])

    def init_cell(self, variant: str) -> str:
        """The median, and the range over the runs."""
        values = [s.init_seconds for s in self.samples[variant]]
        return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"

    def median_import(self, variant: str) -> float:
        return statistics.median(s.import_seconds for s in self.samples[variant])

    def peak_memory(self, variant: str) -> float:
        return max(s.max_memory_mb for s in self.samples[variant])

    def extracted(self, variant: str) -> int:
        return self.samples[variant][0].extracted_bytes

    @property
    def ratio(self) -> float:
        return self.median_init("built") / self.median_init("unstripped")


def outcome_of(invocation: Invocation) -> str:
    if invocation.error is not None:
        return str(invocation.error.get("errorType"))
    result = invocation.result
    if isinstance(result, dict) and result.get("status") == "error":
        return f"error:{result['error']['type']}"
    return str(result.get("status") if isinstance(result, dict) else result)


def measure(spec: FunctionSpec, zips: list[Path], python: str, runtime: Runtime, events: Events) -> Sample:
    """One fresh sandbox (a new execution environment), one cold invocation."""
    with LambdaSandbox(spec, zips, python, runtime, events.environment) as sandbox:
        invocation = sandbox.invoke(events.by_function[spec.name])
        if not invocation.cold or invocation.init_seconds is None or invocation.import_seconds is None:
            raise LayerToolError(f"{spec.name}: the first invocation of a fresh sandbox was not a cold start")
        if invocation.error is not None:
            raise LayerToolError(
                f"{spec.name} failed at init or invocation: {invocation.error}\n{invocation.logs[-2000:]}"
            )
        return Sample(
            init_seconds=invocation.init_seconds,
            import_seconds=invocation.import_seconds,
            max_memory_mb=invocation.max_memory_mb,
            extracted_bytes=sandbox.extracted_bytes,
            outcome=outcome_of(invocation),
        )


def run_benchmark(
    specs: dict[str, FunctionSpec],
    zips: dict[str, dict[str, Path]],
    python: str,
    runtime: Runtime,
    events: Events,
    runs: int,
    say: Callable[[str], None] = log,
) -> list[FunctionResult]:
    results = [FunctionResult(spec.name, list(spec.layers)) for spec in specs.values()]
    for run in range(runs):
        order = VARIANTS if run % 2 == 0 else tuple(reversed(VARIANTS))
        for result in results:
            spec = specs[result.name]
            for variant in order:
                sample = measure(spec, [zips[variant][layer] for layer in spec.layers], python, runtime, events)
                result.samples[variant].append(sample)
                say(
                    f"run {run + 1}/{runs} {spec.name} {variant}: init {sample.init_seconds:.2f} s, "
                    f"peak {sample.max_memory_mb:.0f} MB, {sample.outcome}"
                )
    return results


# --- the table ---------------------------------------------------------------------------


def render(results: list[FunctionResult], facts: dict[str, Any]) -> str:
    base = facts.get("baseline", "unstripped")  # what (a) is: the unstripped install, or --compare-with
    headers = [
        "function",
        f"unzipped MB ({base} / built)",
        f"init s {base} (min–max)",
        "init s built (min–max)",
        f"built / {base}",
        f"goal ≤ {GOAL_RATIO:.2f}" if base == "unstripped" else "",
        f"import s ({base} / built)",
        f"peak MB ({base} / built)",
        "outcome",
    ]
    rows = []
    for r in results:
        rows.append(
            [
                r.name,
                f"{r.extracted('unstripped') / MB:.1f} / {r.extracted('built') / MB:.1f}",
                r.init_cell("unstripped"),
                r.init_cell("built"),
                f"{r.ratio:.2f}",
                ("yes" if r.ratio <= GOAL_RATIO else "NO") if base == "unstripped" else "",
                f"{r.median_import('unstripped'):.2f} / {r.median_import('built'):.2f}",
                f"{r.peak_memory('unstripped'):.0f} / {r.peak_memory('built'):.0f}",
                ", ".join(sorted({s.outcome for v in VARIANTS for s in r.samples[v]})),
            ]
        )
    lines = [
        f"# Cold start per function: {base} layers vs the built layers"
        if "baseline" in facts
        else "# Cold start per function: unstripped source-only layers vs the built layers",
        "",
        f"Median over {facts['runs']} fresh sandboxes per recipe (runs interleaved A/B, B/A), "
        f"{facts['runtime']} ({facts['python']}), one cold invocation each with {facts['events']}. "
        "Init = interpreter start to handler imported (Lambda's Init Duration); peak = the "
        "largest RSS of those invocations. Unzipped MB as Lambda counts (10^6 bytes), task/ + opt/.",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i in (0, len(headers) - 1) else "---:" for i in range(len(headers))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        f"Machine: {facts['machine']}; {facts['cpus']} CPUs; load average at start {facts['load_at_start']}, "
        f"at end {facts['load_at_end']}; {facts['date']}.",
    ]
    return "\n".join(lines) + "\n"


def interpreter_version(python: str) -> str:
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return f"{python}, Python {version}"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh sandboxes per function and recipe (default 7)")
    parser.add_argument(
        "--events",
        choices=["real", "wrong-shape"],
        default="real",
        help="what each cold invocation gets (default: the real pipeline on the sample)",
    )
    parser.add_argument("--runtime", help="Lambda runtime (default: the project's)")
    parser.add_argument("--arch", help="architecture (default: the project's)")
    parser.add_argument("--compare-with", type=Path, help="a folder of <layer>.zip to compare with instead of (a)")
    args = parser.parse_args(argv)
    if args.compare_with:
        args.compare_with = args.compare_with.resolve()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_at_start = load_average()
    try:
        project = load_project(ROOT)
        runtime, arch = resolve_target(project, args.runtime, args.arch)
        if ARCHES[arch] != os.uname().machine:
            raise LayerToolError(f"{arch} layers cannot run on this {os.uname().machine} machine.")
        python = find_interpreter(runtime)
        specs = {spec.name: spec for spec in function_specs(TEMPLATE) if spec.runtime == runtime.name}
        if not specs:
            raise LayerToolError(f"{TEMPLATE} has no function on {runtime.name}.")
        used = {name for spec in specs.values() for name in spec.layers}
        layers = [layer for layer in build_order(project) if layer.name in used]
        zips = {
            "built": built_zips(layers, runtime, arch),
            "unstripped": (
                built_zips(layers, runtime, arch, args.compare_with)
                if args.compare_with
                else unstripped_zips(project, layers, runtime, arch)
            ),
        }
        for name, path in zips["unstripped"].items():
            files, size = unzipped_size(path)
            log(f"{'compared' if args.compare_with else 'unstripped'} {name}: {files} files, {size / MB:.1f} MB")
        with pipeline_events(args.events, specs, zips["built"], python, runtime) as events:
            results = run_benchmark(specs, zips, python, runtime, events, args.runs)
    except LayerToolError as exc:
        print(f"cold_start: {exc}", file=sys.stderr)
        return exc.exit_code
    facts = {
        "runs": args.runs,
        "runtime": runtime.name,
        "arch": arch,
        "python": interpreter_version(python),
        "events": events.description,
        "machine": f"{platform.system()} {platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "load_at_start": load_at_start,
        "load_at_end": load_average(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "goal_ratio": GOAL_RATIO,
        **({"baseline": args.compare_with.name} if args.compare_with else {}),
    }
    table = render(results, facts)
    print(table)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    name = "cold_start-compare" if args.compare_with else "cold_start"
    (OUT_DIR / f"{name}.md").write_text(table)
    document = {
        "facts": facts,
        "layers": {
            variant: {name: os.path.relpath(path, ROOT) for name, path in by_layer.items()}
            for variant, by_layer in zips.items()
        },
        # `inv cold-starts` compares a release with these figures only when it deployed the same zips.
        "layer_sha256": {"built": {name: sha256_of(path) for name, path in zips["built"].items()}},
        "functions": [
            {
                "name": r.name,
                "layers": r.layers,
                "median_init_seconds": {v: r.median_init(v) for v in VARIANTS},
                "median_import_seconds": {v: r.median_import(v) for v in VARIANTS},
                "peak_memory_mb": {v: r.peak_memory(v) for v in VARIANTS},
                "extracted_bytes": {v: r.extracted(v) for v in VARIANTS},
                "ratio_built_to_unstripped": r.ratio,
                "meets_goal": r.ratio <= GOAL_RATIO,
                "samples": {v: [asdict(s) for s in r.samples[v]] for v in VARIANTS},
            }
            for r in results
        ],
    }
    figures = OUT_DIR / f"{name}.json" if args.compare_with else PATHS.cold_start_figures
    figures.write_text(json.dumps(document, indent=2) + "\n")
    log(f"wrote {(OUT_DIR / f'{name}.md').relative_to(ROOT)} and {figures.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
