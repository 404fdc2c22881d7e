"""`inv run-pipeline` without a stage: the template's state machine on one CSV in a fresh local AWS.

Nothing is deployed with SAM: the template's functions are created in the moto server from their
packages and the built layer zips (BuildPaths.output_dir), the state machine from the template's
definition with each function's ARN filled in, and the execution runs on moto's own Step Functions
interpreter, each Lambda task in the project's sandbox inside the server (local_aws_fixes,
patches 12-16). Shared by `inv run-pipeline`, the integration tests and the benchmarks.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.template import TEMPLATE, FunctionSpec, function_specs, package_files
from ..core.errors import StateMachineError, collect
from ..core.layer_zip import write_zip
from ..core.paths import BuildPaths
from .moto_server import SANDBOXES_ENV, MotoServer, moto_server
from .pipeline_progress import Execution, follow, function_lines
from .pipeline_stage import SAMPLE, create_card_history_table, new_bucket, s3_created_event, upload_trained_model
from .state_machine_definition import load_state_machine

RUNTIME = "python3.12"  # the template's Globals Runtime and layers/defaults.toml
ARCH = "x86_64"
MAX_SANDBOXES = 8  # per function; each is a process with pandas (and scikit-learn) loaded


@dataclass(frozen=True)
class LocalPipeline:
    """The template's functions and state machine, created in one moto server."""

    functions: dict[str, str]  # logical id -> function name
    state_machine_arn: str


def layer_zips(spec: FunctionSpec, layers_dir: Path) -> list[Path]:
    """The function's built layer zips, in the template's order (the order Lambda extracts them)."""
    return [layers_dir / f"{layer}.zip" for layer in spec.layers]


def package_zip(code_dir: Path) -> bytes:
    """The function's package as Lambda gets it (what the sandbox lays out in task/)."""
    with tempfile.TemporaryDirectory(prefix="package-") as scratch:
        target = Path(scratch) / "package.zip"
        write_zip(code_dir, target, prefix="", files=[rel for rel, _ in package_files(code_dir)])
        return target.read_bytes()


def create_pipeline(
    server: MotoServer, root: Path, environment: dict[str, str], prefix: str = "local"
) -> LocalPipeline:
    """The template's functions (named `<prefix>-<logical id>`, `environment` added to their
    variables) and its state machine."""
    template = root / TEMPLATE
    specs = function_specs(template)
    layers_dir = BuildPaths.of(root).output_dir(RUNTIME, ARCH)
    missing = sorted({f"{spec.name}: {p}" for spec in specs for p in layer_zips(spec, layers_dir) if not p.is_file()})
    collect(missing, StateMachineError, "Layer zips the functions need are not built. Fix: inv build-layers.")
    s3, lambda_client = server.client("s3"), server.client("lambda")
    role = server.client("iam").create_role(RoleName=f"local-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")
    code_bucket = new_bucket(s3, "code", prefix="local")
    layer_arns: dict[str, str] = {}
    functions: dict[str, str] = {}
    arns: dict[str, str] = {}
    for spec in specs:
        for layer in spec.layers:
            if layer not in layer_arns:
                s3.upload_file(str(layers_dir / f"{layer}.zip"), code_bucket, f"layers/{layer}.zip")
                layer_arns[layer] = lambda_client.publish_layer_version(
                    LayerName=layer,
                    Content={"S3Bucket": code_bucket, "S3Key": f"layers/{layer}.zip"},
                    CompatibleRuntimes=[RUNTIME],
                    CompatibleArchitectures=[ARCH],
                )["LayerVersionArn"]
        name = f"{prefix}-{spec.name}"
        created = lambda_client.create_function(
            FunctionName=name,
            Runtime=spec.runtime,
            Role=role["Role"]["Arn"],
            Handler=spec.handler,
            Code={"ZipFile": package_zip(spec.code_dir)},
            MemorySize=spec.memory_mb,
            Timeout=spec.timeout_s,
            Architectures=[spec.arch],
            Layers=[layer_arns[layer] for layer in spec.layers],
            Environment={"Variables": {**spec.environment, **environment}},
        )
        functions[spec.name], arns[spec.name] = name, created["FunctionArn"]
    machine = load_state_machine(template, function_refs=arns)
    state_machine_arn = server.client("stepfunctions").create_state_machine(
        name=f"local-pipeline-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(machine.definition),
        roleArn=role["Role"]["Arn"],
    )["stateMachineArn"]
    return LocalPipeline(functions, state_machine_arn)


def run_execution(
    server: MotoServer,
    pipeline: LocalPipeline,
    execution_input: Any,
    log: Callable[[str], None] = print,
    limit_s: float = 3600,
) -> Execution:
    sfn = server.client("stepfunctions")
    started = sfn.start_execution(stateMachineArn=pipeline.state_machine_arn, input=json.dumps(execution_input))
    execution = follow(sfn, started["executionArn"], log, limit_s)
    if execution is None:
        raise StateMachineError(f"{started['executionArn']} is still RUNNING after {limit_s:.0f} s; stopped waiting.")
    return execution


@dataclass(frozen=True)
class PipelineRequest:
    root: Path
    batch: Path  # a CSV file
    max_per_function: int = 1


def pipeline_request(root: Path, batch: str | None, sandboxes: str | None) -> PipelineRequest:
    """`inv run-pipeline`'s arguments, checked: an existing file, 1 to MAX_SANDBOXES sandboxes."""
    path = Path(batch).resolve() if batch else root / SAMPLE
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


def pipeline_server(max_per_function: int = 1) -> Any:
    """A fresh patched moto server whose sandboxes are capped at `max_per_function` per function."""
    return moto_server(environment={SANDBOXES_ENV: str(max_per_function)})


def run_batch(request: PipelineRequest, log: Callable[[str], None] = print) -> tuple[Execution, list[str]]:
    """`inv run-pipeline`: a moto server of its own, the model and table made in it, the batch
    uploaded to incoming/ and the state machine run on that upload; nothing deployed with SAM.
    The execution and the per-function lines (calls, durations, peak memory)."""
    with pipeline_server(request.max_per_function) as server, tempfile.TemporaryDirectory(prefix="run-pipeline-") as t:
        s3 = server.client("s3")
        data_bucket, model_bucket = (
            new_bucket(s3, kind, versioned=True, prefix="local") for kind in ("data", "models")
        )
        log(f"local AWS at {server.endpoint_url}; training the model on the sample data")
        upload_trained_model(server, request.root, model_bucket, Path(t))
        table = create_card_history_table(server, request.root / TEMPLATE, prefix="local")
        pipeline = create_pipeline(server, request.root, {"MODEL_BUCKET": model_bucket, "CARD_HISTORY_TABLE": table})
        key = f"incoming/{request.batch.name}"
        s3.upload_file(str(request.batch), data_bucket, key)
        version = s3.head_object(Bucket=data_bucket, Key=key).get("VersionId")
        log(f"uploaded {request.batch} to s3://{data_bucket}/{key}; running the state machine")
        since = int(time.time() * 1000)
        execution = run_execution(server, pipeline, s3_created_event(data_bucket, key, version), log)
        lines = function_lines(server.client("logs"), pipeline.functions, since)
    return execution, lines
