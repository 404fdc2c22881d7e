"""The post-deploy smoke run: each function once, through its live alias, with the smoke event.

The handlers answer {"status": "smoke"} once their init (every layer import) has run, and read
or write no data (services/shared/runtime.py). A stage that cannot run code (the local emulator)
gets the deployed bytes downloaded (function code and layer zips, as AWS serves them) and run in
the project's Lambda-like sandbox, so the check still covers what was deployed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.template import FunctionSpec
from ..core.runtimes import RUNTIMES, Runtime
from ..local.sandbox import Invocation, LambdaSandbox, smoke_event, target_interpreter
from .deployed_state import ALIAS, FunctionState
from .layer_versions import code_sha256, get_version
from .sandbox_logs import write_invocation_logs
from .stage_session import StageSession


def _failure(function: FunctionState, result: object, error: object) -> str | None:
    if error:
        return f"{function.logical_id} ({function.name}:{function.version}) failed: {error}"
    if not isinstance(result, dict) or result.get("status") != "smoke":
        return f"{function.logical_id} ({function.name}:{function.version}) answered {result!r}, not a smoke answer"
    return None


def smoke_invoke(session: StageSession, function: FunctionState) -> str | None:
    response = session.client("lambda").invoke(
        FunctionName=function.name, Qualifier=ALIAS, Payload=json.dumps(smoke_event()).encode()
    )
    payload = json.loads(response["Payload"].read() or b"null")
    return _failure(function, payload, payload if response.get("FunctionError") else None)


def _download(url: str, destination: Path) -> Path:
    with urllib.request.urlopen(url, timeout=120) as response, destination.open("wb") as out:
        shutil.copyfileobj(response, out)
    return destination


def digest_problems(what: str, path: Path, expected: object) -> list[str]:
    """A downloaded zip whose CodeSha256 is not the one the stage reports (none when it is)."""
    actual = code_sha256(path)
    if actual == expected:
        return []
    return [f"{what}: downloaded {actual}, but the stage says CodeSha256 {expected}"]


@dataclass(frozen=True)
class DeployedCode:
    spec: FunctionSpec  # the version's configuration; code_dir is the downloaded code
    layer_zips: list[Path]  # the version's layer versions, downloaded, in its order
    problems: list[str]  # downloaded bytes that differ from the digests the stage reports


def download_deployed(session: StageSession, function: FunctionState, runtime: Runtime, work: Path) -> DeployedCode:
    """The code and layer versions of the function's live version, as AWS serves them
    (get_function / get_layer_version Content.Location), checked against their CodeSha256."""
    lambda_client = session.client("lambda")
    config = function.configuration
    code = lambda_client.get_function(FunctionName=function.name, Qualifier=function.version)["Code"]
    code_zip = _download(code["Location"], work / "code.zip")
    problems = digest_problems(f"{function.name}:{function.version} code", code_zip, config.get("CodeSha256"))
    code_dir = work / "code"
    with zipfile.ZipFile(code_zip) as archive:
        archive.extractall(code_dir)
    layer_zips = []
    for index, arn in enumerate(function.layers):
        content = get_version(lambda_client, arn)["Content"]
        layer_zips.append(_download(content["Location"], work / f"layer-{index}.zip"))
        problems += digest_problems(arn, layer_zips[-1], content.get("CodeSha256"))
    spec = FunctionSpec(
        name=function.name,
        code_dir=code_dir,
        handler=str(config.get("Handler")),
        runtime=runtime.name,
        arch=(config.get("Architectures") or ["x86_64"])[0],
        layers=(),
        memory_mb=int(config.get("MemorySize", 128)),
        timeout_s=int(config.get("Timeout", 3)),
        environment=dict(config.get("Environment", {}).get("Variables", {})),
    )
    return DeployedCode(spec, layer_zips, problems)


def run_deployed(
    session: StageSession, function: FunctionState, runtime: Runtime, event: Any
) -> Invocation | list[str]:
    """`event` run in a sandbox on the code and layers the function's alias runs, as downloaded from
    the stage; the digest problems instead when what came is not what the alias runs."""
    with tempfile.TemporaryDirectory(prefix="deployed-") as scratch:
        deployed = download_deployed(session, function, runtime, Path(scratch))
        if deployed.problems:
            return deployed.problems
        # The version's own architecture: an arm64 function runs under qemu here.
        python, emulated = target_interpreter(runtime, deployed.spec.arch)
        with LambdaSandbox(
            deployed.spec, deployed.layer_zips, python, runtime, session_env(session), emulated=emulated
        ) as sandbox:
            return sandbox.invoke(event)


def smoke_sandbox(session: StageSession, function: FunctionState) -> str | None:
    config = function.configuration
    runtime = RUNTIMES.get(str(config.get("Runtime")))
    if runtime is None:
        return f"{function.logical_id}: runtime {config.get('Runtime')!r} is not one the sandbox runs"
    invocation = run_deployed(session, function, runtime, smoke_event())
    if isinstance(invocation, list):
        return f"{function.logical_id}: " + "; ".join(invocation)
    # Lambda would log this run (REPORT line, Init Duration): so does the stage's emulator.
    write_invocation_logs(session.client("logs"), function.name, function.version, invocation)
    error = invocation.error and f"{invocation.error.get('errorType')}: {invocation.error.get('errorMessage')}"
    return _failure(function, invocation.result, error)


def session_env(session: StageSession) -> dict[str, str]:
    """What a sandboxed function needs to reach the stage's AWS (the emulator), and no more."""
    env = session.environment()
    keep = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")
    return {key: env[key] for key in keep if key in env}


def smoke_run(session: StageSession, functions: list[FunctionState]) -> list[str]:
    """Problems found; empty when every function answered."""
    run = smoke_sandbox if session.stage.smoke == "sandbox" else smoke_invoke
    return [problem for function in functions if (problem := run(session, function))]
