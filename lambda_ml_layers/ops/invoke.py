"""`inv invoke FUNCTION [--event FILE] [--stage STAGE]`: run one function once in the sandbox,
the way `sam local invoke` does.

Without a stage it runs today's build: the function's code from the template and its layers'
zips as the build published them. With a stage it runs what the stage's `live` alias points at: the code and
layer versions downloaded from the stage's Lambda (deploy/smoke.py's download, digests checked),
with the stage's endpoint and credentials, as the deploy's smoke run does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from ..config.template import TEMPLATE, FunctionSpec, function_specs
from ..core.errors import ConfigError, FunctionFailed, OperationsError
from ..core.paths import BuildPaths
from ..core.runtimes import RUNTIMES, Runtime
from ..deploy.deployed_state import ALIAS, read_stack
from ..deploy.smoke import run_deployed
from ..local.sandbox import Invocation, LambdaSandbox, log_lines, smoke_event, target_interpreter
from .stage_inventory import aws_failure, open_stage


@dataclass(frozen=True)
class InvokeResult:
    function: str  # template logical id
    where: str  # "today's build" or "<stage> <name>:<version> (live)"
    version: str  # what the START line names
    invocation: Invocation


def read_event(path: str | None) -> Any:
    """The event in a JSON file; without one, the smoke event every function answers."""
    if path is None:
        return smoke_event()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"--event {path}: cannot be read ({reason}).\n  Fix: give a JSON file that exists.") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"--event {path}: not JSON ({exc}).\n  Fix: the event is one JSON document, as Lambda passes it."
        ) from None


def template_function(root: Path, logical_id: str) -> FunctionSpec:
    specs = {spec.name: spec for spec in function_specs(root / TEMPLATE)}
    if logical_id not in specs:
        raise ConfigError(
            f"{TEMPLATE} has no function {logical_id!r}.\n  Fix: name one of its logical ids: {', '.join(specs)}."
        )
    return specs[logical_id]


def _runtime(name: str, where: str) -> Runtime:
    if name not in RUNTIMES:
        raise ConfigError(
            f"{where}: runtime {name!r} is not one the sandbox runs ({', '.join(RUNTIMES)}).\n"
            f"  Fix: set the function's Runtime to one of them."
        )
    return RUNTIMES[name]


def built_layer_zips(root: Path, spec: FunctionSpec) -> list[Path]:
    """The function's layers as today's build published them, in the template's order."""
    folder = BuildPaths.of(root).output_dir(spec.runtime, spec.arch)
    zips = [folder / f"{layer}.zip" for layer in spec.layers]
    missing = [str(path.relative_to(root)) for path in zips if not path.is_file()]
    if missing:
        raise ConfigError(
            f"{spec.name} needs layers that today's build has not published: {', '.join(missing)}.\n"
            f"  Fix: `inv build-layers --runtime {spec.runtime} --arch {spec.arch}`, or invoke a deployed "
            f"stage with --stage."
        )
    return zips


def invoke_built(root: Path, logical_id: str, event: Any) -> InvokeResult:
    spec = template_function(root, logical_id)
    runtime = _runtime(spec.runtime, f"{TEMPLATE}: {logical_id}")
    zips = built_layer_zips(root, spec)
    python, emulated = target_interpreter(runtime, spec.arch)
    with LambdaSandbox(spec, zips, python, runtime, emulated=emulated) as sandbox:
        invocation = sandbox.invoke(event)
    return InvokeResult(logical_id, "today's build", "$LATEST", invocation)


def invoke_deployed(root: Path, stage_name: str, logical_id: str, event: Any) -> InvokeResult:
    template_function(root, logical_id)  # an unknown name fails before the stage is read
    stage = open_stage(root, stage_name, "inv invoke")
    session = stage.session
    try:
        function = read_stack(session).functions.get(logical_id)
    except (BotoCoreError, ClientError) as exc:
        raise aws_failure(stage, "inv invoke", "reading the stack", exc) from None
    if function is None or not function.version:
        raise OperationsError(
            f"Stage {stage_name!r} has no {logical_id} with a {ALIAS!r} alias (stack {stage.stage.stack_name}).\n"
            f"  Fix: `inv deploy --stage {stage_name}`, or invoke today's build without --stage."
        )
    runtime = _runtime(str(function.configuration.get("Runtime")), f"{stage_name} {function.name}:{function.version}")
    try:
        invocation = run_deployed(session, function, runtime, event)
    except (BotoCoreError, ClientError, OSError) as exc:
        raise aws_failure(stage, "inv invoke", f"downloading {function.name}:{function.version}", exc) from None
    if isinstance(invocation, list):
        raise OperationsError(
            f"Stage {stage_name!r}: what was downloaded is not what the {ALIAS!r} alias runs:\n"
            + "\n".join(f"  - {problem}" for problem in invocation)
            + "\n  Fix: run it again; if it persists, redeploy the stage."
        )
    where = f"stage {stage_name}: {function.name}:{function.version} ({ALIAS})"
    return InvokeResult(logical_id, where, function.version, invocation)


def invoke_lines(result: InvokeResult) -> list[str]:
    """What `inv invoke` prints: Lambda's log lines for the run, then the result or the error."""
    invocation = result.invocation
    lines = [f"Invoking {result.function} ({result.where})", *log_lines(invocation, result.version)]
    if invocation.prune_fix:
        lines.append(invocation.prune_fix)
    answer = invocation.result if invocation.ok else invocation.error
    lines.append(json.dumps(answer, indent=2, default=str))
    return lines


def raise_if_failed(result: InvokeResult) -> None:
    error = result.invocation.error
    if error is not None:
        raise FunctionFailed(
            f"{result.function} failed: {error.get('errorType')}: {error.get('errorMessage')} (its logs are above)."
        )
