"""The pipeline's resources in a local moto server, and one batch run through the template's
state machine in the sandboxes: what `inv run-pipeline`, the integration tests and the
benchmarks share (the model trained by the project's own training code, the template's
CardHistoryTable, the environment deploy would give the functions)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config.template import function_specs
from ...core.errors import StateMachineError
from ...core.interpreters import find_interpreter
from ...core.paths import BuildPaths
from ...core.runtimes import RUNTIMES
from ..moto_server import MotoServer, moto_server
from ..pipeline_stage import create_card_history_table, function_environment, new_bucket, s3_created_event
from ..training import TrainRequest, train_model
from .history import ExecutionResult, HistoryEvent
from .interpreter import RunOptions, run_execution
from .sandbox_invoker import SandboxInvoker, SandboxSetup
from .template_definition import load_state_machine

TEMPLATE = Path("infra/template.yaml")
RUNTIME = "python3.12"  # the template's Globals Runtime and layers/defaults.toml
ARCH = "x86_64"


def upload_trained_model(server: MotoServer, root: Path, bucket: str, out_dir: Path) -> dict[str, Any]:
    """`inv train-model --bucket BUCKET` against the server: trained in the layers' python3.12 on the
    sample, uploaded; the manifest (models/current/model.json) it wrote."""
    env = {**os.environ, **server.client_env()}
    train_model(TrainRequest(root=root, bucket=bucket, out_dir=out_dir, env=env), log=lambda line: None)
    manifest: dict[str, Any] = json.loads((out_dir / "model.json").read_text())
    return manifest


def sandbox_setup(root: Path, environment: dict[str, str], max_per_function: int = 1) -> SandboxSetup:
    runtime = RUNTIMES[RUNTIME]
    return SandboxSetup(
        python=find_interpreter(runtime),
        runtime=runtime,
        layers_dir=BuildPaths.of(root).output_dir(RUNTIME, ARCH),
        environment=environment,
        max_per_function=max_per_function,
    )


def run_state_machine(
    root: Path, execution_input: Any, setup: SandboxSetup, options: RunOptions | None = None
) -> tuple[ExecutionResult, SandboxInvoker]:
    """The template's PipelineStateMachine run once on `execution_input` through the sandboxes."""
    template = root / TEMPLATE
    machine = load_state_machine(template)
    specs = {spec.name: spec for spec in function_specs(template)}
    with SandboxInvoker(specs, setup) as invoker:
        result = run_execution(machine.definition, execution_input, invoker, options, machine.functions)
    return result, invoker


@dataclass(frozen=True)
class PipelineRequest:
    root: Path
    batch: Path  # a CSV file
    max_per_function: int = 1


MAX_SANDBOXES = 8  # per function; each is a process with pandas (and scikit-learn) loaded


def pipeline_request(root: Path, batch: str | None, sandboxes: str | None) -> PipelineRequest:
    """`inv run-pipeline`'s arguments, checked: an existing file, 1 to MAX_SANDBOXES sandboxes."""
    path = Path(batch).resolve() if batch else root / "data" / "sample" / "transactions.csv"
    if not path.is_file():
        raise StateMachineError(f"--batch {batch}: no such file ({path}). Fix: give the path of a CSV file to upload.")
    try:
        count = int(sandboxes or "1")
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_SANDBOXES:
        raise StateMachineError(
            f"--sandboxes must be a whole number from 1 to {MAX_SANDBOXES}, not {sandboxes!r} "
            "(each sandbox is a process holding pandas; the machine's cores decide what helps)."
        )
    return PipelineRequest(root, path, count)


def run_batch(request: PipelineRequest, log: Callable[[str], None] = print) -> ExecutionResult:
    """`inv run-pipeline`: a moto server of its own, the model and table made in it, the batch
    uploaded to incoming/ and the state machine run on that upload; nothing deployed."""
    with moto_server() as server, tempfile.TemporaryDirectory(prefix="run-pipeline-") as scratch:
        s3 = server.client("s3")
        data_bucket, model_bucket = (
            new_bucket(s3, kind, versioned=True, prefix="local") for kind in ("data", "models")
        )
        log(f"local AWS at {server.endpoint_url}; training the model on the sample data")
        upload_trained_model(server, request.root, model_bucket, Path(scratch))
        table = create_card_history_table(server, request.root / TEMPLATE, prefix="local")
        key = f"incoming/{request.batch.name}"
        s3.upload_file(str(request.batch), data_bucket, key)
        version = s3.head_object(Bucket=data_bucket, Key=key).get("VersionId")
        log(f"uploaded {request.batch} to s3://{data_bucket}/{key}; running the state machine")
        environment = function_environment(server, model_bucket, table)
        setup = sandbox_setup(request.root, environment, request.max_per_function)
        result, _ = run_state_machine(request.root, s3_created_event(data_bucket, key, version), setup)
    return result


def history_lines(result: ExecutionResult) -> list[str]:
    """One line per state left (its time) and per task failure or retry, then the outcome."""
    lines = ["   ended at      took  state"] + [_line(event) for event in result.history if event.kind in _SHOWN]
    outcome = (
        f"SUCCEEDED in {result.duration_s:.1f} s: {json.dumps(result.output)[:300]}"
        if result.status == "SUCCEEDED"
        else f"FAILED in {result.duration_s:.1f} s: {result.error}: {result.cause}"
    )
    return [*lines, outcome]


_SHOWN = ("StateExited", "StateFailed", "StateRetry", "StateCaught")


def _line(event: HistoryEvent) -> str:
    took = f"{event.duration_s:8.2f} s" if event.duration_s is not None else " " * 10
    what = {"StateExited": "", "StateFailed": "failed", "StateRetry": "retry", "StateCaught": "caught"}[event.kind]
    error = f" {event.error}" if event.error else ""
    return f"{event.at_s:8.2f} s  {took}  {event.where} {what}{error}".rstrip()
