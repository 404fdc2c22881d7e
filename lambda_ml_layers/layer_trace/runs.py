"""The traced runs: each layer's smoke test, the model training, and the pipeline's functions.

Every run lays the built zips out as Lambda does (one opt/, the template's order) and runs
under target_scripts/trace_loads.py, which leaves one record per process in the run's own
folder. A run that fails is a TraceFailed naming it: a manifest from a broken run would
record the failure's path, not the function's.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..build.target_imports import lambda_sys_path
from ..checks.layer_checks import extract_built, run_smoke_test
from ..config.project import ProjectConfig, build_order
from ..config.template import TEMPLATE, FunctionSpec
from ..core.command_runner import call
from ..core.errors import LayerTestFailed, TraceFailed
from ..core.runtimes import Runtime
from ..local.moto_server import MotoServer
from ..local.pipeline_stage import (
    SAMPLE,
    create_card_history_table,
    function_environment,
    new_bucket,
    s3_created_event,
)
from ..local.sandbox import Invocation, LambdaSandbox, smoke_event
from ..local.training import TRAINER
from ..target_scripts import traced
from .attribution import LoadRecord

# The state machine's order; any other function of the template gets the smoke event only.
PIPELINE = ("DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction")


@dataclass(frozen=True)
class TraceTarget:
    """Where the runs happen: the built zips of one runtime and arch, its interpreter, a scratch folder."""

    root: Path
    runtime: Runtime
    arch: str
    python: str
    output_dir: Path
    scratch: Path
    say: Callable[[str], None] = print

    def zip_of(self, layer: str) -> Path:
        return self.output_dir / f"{layer}.zip"

    def folder(self, name: str) -> Path:
        path = self.scratch / name
        path.mkdir(parents=True)
        return path


@dataclass(frozen=True)
class TracedRun:
    label: str  # the manifest's "# Runs:" line, e.g. "smoke test core-data-science"
    layers: tuple[str, ...]  # the layers in its opt/, in extraction order
    records: tuple[LoadRecord, ...]


def read_records(record_dir: Path, label: str) -> tuple[LoadRecord, ...]:
    records = tuple(LoadRecord.read(path) for path in sorted(record_dir.glob("trace-*.json")))
    if not records:
        raise TraceFailed(
            f"{label}: the traced process left no record in {record_dir} (it was killed, or exited "
            f"through os._exit).\n  Fix: run it again; if it persists, run the same test untraced to see why."
        )
    return records


def extract_layers(target: TraceTarget, layers: list[str], opt: Path) -> None:
    """The built zips into opt/ in order, as layer_tests does; a missing or unreadable zip names itself."""
    try:
        for layer in layers:
            extract_built(target.output_dir, layer, target.runtime, target.arch, opt)
    except LayerTestFailed as exc:
        raise TraceFailed(str(exc)) from None


def trace_smoke_test(target: TraceTarget, project: ProjectConfig, name: str) -> TracedRun:
    """layers/<name>/smoke_test.py as `nox -s layer_tests` runs it, on the layer and its bases."""
    label = f"smoke test {name}"
    chain = [layer.name for layer in build_order(project, [name])]
    work = target.folder(f"smoke-{name}")
    opt, records = work / "opt", target.folder(f"smoke-{name}-records")
    extract_layers(target, chain, opt)
    failures = run_smoke_test(target.python, project.layer(name), opt, target.runtime, work, trace_to=records)
    if failures:
        raise TraceFailed(f"{label} failed under the tracer:\n" + "\n".join(failures))
    return TracedRun(label, tuple(chain), read_records(records, label))


def trace_training(target: TraceTarget, layers: list[str], server: MotoServer, bucket: str) -> TracedRun:
    """services/training/trainer.py on the sample, with only the layers' packages (as the
    functions get them), uploading the model the functions then load to the server's `bucket`."""
    label = "model training: sample data, upload"
    work = target.folder("training")
    opt, records = work / "opt", target.folder("training-records")
    extract_layers(target, layers, opt)
    trainer = target.root / TRAINER
    first = [str(trainer.parent), *lambda_sys_path(opt, target.runtime)]
    # --cache none: a reused model would skip training, and the trace would miss what training imports.
    args = ["--data", str(target.root / SAMPLE), "--out", str(work / "model"), "--bucket", bucket, "--cache", "none"]
    command = [target.python, "-I", "-S", "-B", *traced(records, opt, first), str(trainer), *args]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", **server.client_env()}
    # error=None: a failed training is this run's failure, explained with the trainer's last lines.
    finished = call(command, cwd=work, env=env, timeout=900, error=None)
    if finished.returncode != 0 or finished.timed_out:
        raise TraceFailed(f"{label} failed under the tracer (exit {finished.returncode}):\n{finished.tail(15)}")
    return TracedRun(label, tuple(layers), read_records(records, label))


def _checked(invocation: Invocation, function: str, scenario: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    result = invocation.result if isinstance(invocation.result, dict) else {}
    if invocation.error is not None or result.get("status") not in statuses:
        raise TraceFailed(
            f"function {function}, {scenario}: expected status {' or '.join(statuses)}, got "
            f"{invocation.error or invocation.result}.\n{invocation.logs[-2000:]}\n"
            f"  Fix: the function tests (tests/integration/test_pipeline_sandbox.py) show the same run untraced."
        )
    return result


def ragged(sample: bytes) -> bytes:
    """The sample with one row of too many fields: a batch DataValidation rejects."""
    lines = sample.decode().splitlines()
    lines[2] += ",surplus,field"
    return ("\n".join(lines) + "\n").encode()


def trace_functions(
    target: TraceTarget, specs: list[FunctionSpec], server: MotoServer, model_bucket: str
) -> list[TracedRun]:
    """Each function in its sandbox (warm between invocations, as one container) on the runs the
    function tests use: the smoke event, the sample batch through all three, a rejected batch,
    and a corrected re-upload of the sample batch through all three again."""
    by_name = {spec.name: spec for spec in specs}
    missing = [name for name in PIPELINE if name not in by_name]
    if missing:
        raise TraceFailed(
            f"{TEMPLATE} has no {', '.join(missing)}: the traced batch runs chain {' -> '.join(PIPELINE)} "
            f"as the state machine does.\n  Fix: name the template's functions in PIPELINE in {__name__}."
        )
    validation, features, predictions = (by_name[name] for name in PIPELINE)
    s3 = server.client("s3")
    table = create_card_history_table(server, target.root / TEMPLATE)
    environment = function_environment(server, model_bucket, table)
    bucket = new_bucket(s3, "trace-data", versioned=True)
    sample = (target.root / SAMPLE).read_bytes()
    scenarios: dict[str, list[str]] = {spec.name: [] for spec in specs}
    record_dirs = {spec.name: target.folder(f"function-{spec.name}-records") for spec in specs}

    with ExitStack() as stack:
        sandboxes = {
            spec.name: stack.enter_context(
                LambdaSandbox(
                    spec,
                    [target.zip_of(layer) for layer in spec.layers],
                    target.python,
                    target.runtime,
                    environment,
                    trace_to=record_dirs[spec.name],
                )
            )
            for spec in specs
        }

        def invoke(spec: FunctionSpec, scenario: str, event: Any, *statuses: str) -> dict[str, Any]:
            target.say(f"  {spec.name}: {scenario}")
            if scenario not in scenarios[spec.name]:
                scenarios[spec.name].append(scenario)
            return _checked(sandboxes[spec.name].invoke(event), spec.name, scenario, statuses)

        for spec in specs:
            invoke(spec, "smoke event", smoke_event(), "smoke")

        def upload_and_run(scenario: str, body: bytes) -> None:
            key = "incoming/2024-05-01/sample.csv"
            version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
            validated = invoke(validation, scenario, s3_created_event(bucket, key, version), "passed")
            built = invoke(features, scenario, validated, "ok")
            invoke(predictions, scenario, built, "ok")

        upload_and_run("sample batch", sample)
        bad_key = "incoming/2024-05-02/ragged.csv"
        s3.put_object(Bucket=bucket, Key=bad_key, Body=ragged(sample))
        invoke(validation, "bad batch", s3_created_event(bucket, bad_key), "error")
        # A correction of the same batch: fewer rows, the same key, a new S3 version.
        upload_and_run("re-upload", b"\n".join(sample.splitlines()[:-20]) + b"\n")
    # Leaving the stack stopped each runtime, which let it exit and write its record.
    return [
        TracedRun(
            f"function {spec.name}: {', '.join(scenarios[spec.name])}",
            tuple(spec.layers),
            read_records(record_dirs[spec.name], f"function {spec.name}"),
        )
        for spec in specs
    ]
