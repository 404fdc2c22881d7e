"""The local stage on arm64 (issue 22): `inv deploy --stage local` with the stage set to arm64 and
python3.13 in a copy of the checkout builds the arm64 layers, deploys them to the patched moto
server with the real `sam deploy`, and its smoke run passes with the arm64 functions running under
qemu; a Lambda Invoke through the emulator runs them under qemu too. An arm64 python3.12 stage is
refused before anything is built or uploaded (no arm64 CPython 3.12 exists here).

Slow (the arm64 layers are built and verified under qemu, every import of the smoke run is
emulated): `nox -s arm64_stage`, outside `nox -t ci`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.deploy.layer_versions import code_sha256
from lambda_ml_layers.local.moto_server import MotoServer, moto_server
from lambda_ml_layers.local.sandbox import EMULATED, smoke_event

from .test_deploy_local import LAYERS, PREFIX, STAGE, copy_checkout, inv, ok, uploads

pytestmark = pytest.mark.emulator

REPO = Path(__file__).resolve().parents[2]
ARM64 = "Stage=local PythonRuntime=python3.13 Architecture=arm64"


def set_local_stage(root: Path, overrides: str) -> None:
    samconfig = root / "infra" / "samconfig.toml"
    text = samconfig.read_text()
    start = text.index("[local.deploy.parameters]")
    line = text.index('parameter_overrides = "', start)
    end = text.index("\n", line)
    samconfig.write_text(f'{text[:line]}parameter_overrides = "{overrides}"{text[end:]}')


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with moto_server() as running:
        yield running


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = copy_checkout(tmp_path_factory.mktemp("arm64-checkout"))
    # The arm64 interpreters bootstrap unpacked (scripts/bootstrap.py), shared as the pip cache is.
    BuildPaths.of(copy).build.mkdir(parents=True, exist_ok=True)
    (BuildPaths.of(copy).build / "toolchains").symlink_to(BuildPaths.of(REPO).build / "toolchains")
    set_local_stage(copy, ARM64)
    return copy


def test_an_arm64_python312_stage_is_refused_before_anything_is_built(root: Path, server: MotoServer) -> None:
    set_local_stage(root, "Stage=local PythonRuntime=python3.12 Architecture=arm64")
    try:
        result = inv(root, server, "deploy", "--stage", STAGE)
    finally:
        set_local_stage(root, ARM64)
    output = result.stdout + result.stderr
    assert result.returncode == 31, output[-4000:]
    assert "Traceback" not in output
    assert "Stage 'local' runs on arm64 python3.12" in output
    assert "PythonRuntime=python3.13" in output
    assert uploads(server) == 0
    assert not BuildPaths.of(root).output_dir("python3.12", "arm64").exists()


def test_the_local_stage_deploys_on_arm64_and_its_smoke_run_passes_under_qemu(root: Path, server: MotoServer) -> None:
    started = time.monotonic()
    output = ok(inv(root, server, "deploy", "--stage", STAGE))
    print(f"arm64 deploy of the local stage: {time.monotonic() - started:.0f} s")
    assert "Stage 'local' is on release 1 (verified)." in output
    assert "build layers for python3.13/arm64" in output
    client = server.client("lambda")
    built = BuildPaths.of(root).output_dir("python3.13", "arm64")
    for layer in LAYERS:
        (version,) = client.list_layer_versions(LayerName=f"{PREFIX}-{layer}")["LayerVersions"]
        assert version["CompatibleArchitectures"] == ["arm64"], layer
        assert version["CompatibleRuntimes"] == ["python3.13"], layer
        content = client.get_layer_version(LayerName=f"{PREFIX}-{layer}", VersionNumber=version["Version"])
        # What was uploaded is the arm64 build, byte for byte.
        assert content["Content"]["CodeSha256"] == code_sha256(built / f"{layer}.zip"), layer
    config = client.get_function_configuration(FunctionName=f"{PREFIX}-data-validation", Qualifier="live")
    assert (config["Runtime"], config["Architectures"]) == ("python3.13", ["arm64"])
    # The smoke run's REPORT lines (the sandbox, under qemu) went to the function's log group.
    assert EMULATED in "\n".join(report_lines(server, f"{PREFIX}-data-validation"))


def test_a_lambda_invoke_in_the_emulator_runs_the_arm64_function_under_qemu(root: Path, server: MotoServer) -> None:
    name = f"{PREFIX}-data-validation"
    before = len(report_lines(server, name))
    response = server.client("lambda").invoke(
        FunctionName=name, Qualifier="live", Payload=json.dumps(smoke_event()).encode()
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    assert payload.get("status") == "smoke", payload
    new = report_lines(server, name)[before:]
    assert new and all(EMULATED in line for line in new), new


def report_lines(server: MotoServer, function_name: str) -> list[str]:
    logs = server.client("logs")
    group = f"/aws/lambda/{function_name}"
    lines = []
    for stream in logs.describe_log_streams(logGroupName=group).get("logStreams", []):
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]
        lines += [event["message"] for event in events if event["message"].startswith("REPORT")]
    return lines
