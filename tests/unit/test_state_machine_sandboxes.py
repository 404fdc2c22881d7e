"""The sandbox invoker: tiny real functions in real LambdaSandboxes (python3.12 processes), run
by the interpreter. The pool cap, warm reuse, and a function error as Step Functions names it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambda_ml_layers.config.template import FunctionSpec
from lambda_ml_layers.core.errors import StateMachineError
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.layer_zip import write_zip
from lambda_ml_layers.core.runtimes import RUNTIMES
from lambda_ml_layers.local.state_machine_runner.interpreter import RunOptions, run_execution
from lambda_ml_layers.local.state_machine_runner.sandbox_invoker import SandboxInvoker, SandboxSetup

RUNTIME = RUNTIMES["python3.12"]
HANDLERS = """\
import os, time
import helper

def split(event, context):
    return {"status": "passed", "chunks": [f"chunk-{n}" for n in range(event["chunks"])]}

def work(event, context):
    time.sleep(0.3)
    if event["key"] == event.get("poison"):
        raise ValueError(f"cannot read {event['key']}")
    return {"key": event["key"], "pid": os.getpid(), "who": helper.WHO}
"""
DEFINITION = {
    "StartAt": "Split",
    "States": {
        "Split": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "Split", "Payload.$": "$"},
            "ResultSelector": {"chunks.$": "$.Payload.chunks"},
            "ResultPath": "$.split",
            "Next": "Each",
        },
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.split.chunks",
            "ItemSelector": {"key.$": "$$.Map.Item.Value", "poison.$": "$.poison"},
            "MaxConcurrency": 4,
            "ItemProcessor": {
                "StartAt": "Work",
                "States": {
                    "Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:Work", "End": True}
                },
            },
            "End": True,
        },
    },
}


@pytest.fixture
def setup(tmp_path: Path) -> tuple[dict[str, FunctionSpec], SandboxSetup]:
    code = tmp_path / "code" / "fn"
    code.mkdir(parents=True)
    (code / "__init__.py").write_text("")
    (code / "handlers.py").write_text(HANDLERS)
    layer_source = tmp_path / "layer"  # write_zip puts it under python/, as a layer is laid out
    layer_source.mkdir()
    (layer_source / "helper.py").write_text("WHO = 'layer'\n")
    layers = tmp_path / "layers"
    layers.mkdir()
    write_zip(tmp_path / "layer", layers / "helper.zip")

    def spec(name: str, handler: str) -> FunctionSpec:
        return FunctionSpec(name, code.parent, handler, "python3.12", "x86_64", ("helper",), 256, 30, {})

    specs = {"Split": spec("Split", "fn.handlers.split"), "Work": spec("Work", "fn.handlers.work")}
    return specs, SandboxSetup(find_interpreter(RUNTIME), RUNTIME, layers, {}, max_per_function=2)


def test_a_map_of_four_runs_on_at_most_two_warm_sandboxes_in_item_order(
    setup: tuple[dict[str, FunctionSpec], SandboxSetup],
) -> None:
    specs, sandbox_setup = setup
    with SandboxInvoker(specs, sandbox_setup) as invoker:
        result = run_execution(DEFINITION, {"chunks": 6, "poison": None}, invoker, RunOptions(), set(specs))
    assert result.status == "SUCCEEDED", result.cause
    assert [item["key"] for item in result.output] == [f"chunk-{n}" for n in range(6)]
    assert {item["who"] for item in result.output} == {"layer"}
    assert len({item["pid"] for item in result.output}) == 2  # two processes, each reused warm
    assert invoker.most_sandboxes() == {"Split": 1, "Work": 2}
    colds = [record.invocation.cold for record in invoker.invocations if record.function == "Work"]
    assert colds.count(True) == 2 and colds.count(False) == 4
    assert set(invoker.peak_memory_mb()) == {"Split", "Work"}


def test_a_function_error_is_reported_with_its_error_type_and_document(
    setup: tuple[dict[str, FunctionSpec], SandboxSetup],
) -> None:
    specs, sandbox_setup = setup
    with SandboxInvoker(specs, sandbox_setup) as invoker:
        result = run_execution(DEFINITION, {"chunks": 3, "poison": "chunk-1"}, invoker, RunOptions(), set(specs))
    assert (result.status, result.error) == ("FAILED", "ValueError")
    cause = json.loads(result.cause or "")
    assert cause["errorType"] == "ValueError" and cause["errorMessage"] == "cannot read chunk-1"
    (failed,) = result.events("MapIterationFailed")
    assert failed.where == "Each[1]"


def test_missing_layer_zips_are_refused_before_any_sandbox(
    setup: tuple[dict[str, FunctionSpec], SandboxSetup], tmp_path: Path
) -> None:
    specs, sandbox_setup = setup
    (sandbox_setup.layers_dir / "helper.zip").unlink()
    with pytest.raises(StateMachineError, match=r"Work: .*helper.zip \(layer helper\)") as raised:
        SandboxInvoker(specs, sandbox_setup)
    assert "inv build-layers" in str(raised.value)


def test_an_unknown_function_fails_like_lambda_would(setup: tuple[dict[str, FunctionSpec], SandboxSetup]) -> None:
    specs, sandbox_setup = setup
    definition: dict[str, Any] = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "Nope", "End": True}}}
    with SandboxInvoker(specs, sandbox_setup) as invoker:
        result = run_execution(definition, {}, invoker, RunOptions())
    assert (result.status, result.error) == ("FAILED", "Lambda.ResourceNotFoundException")
