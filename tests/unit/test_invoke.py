"""`inv invoke` on a tiny template and hand-made layers: the event, the function's name, the
built zips, what is printed and the exit code (no network; the sandbox runs awslambdaric)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.core.errors import ConfigError, FunctionFailed
from lambda_ml_layers.core.layer_zip import write_zip
from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.deploy.smoke import code_sha256, digest_problems
from lambda_ml_layers.local.sandbox import smoke_event
from lambda_ml_layers.ops.invoke import invoke_built, invoke_lines, raise_if_failed, read_event, template_function
from tests.project_factory import REPO

INV = [sys.executable, "-m", "invoke", "--search-root", str(REPO)]

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  ToolsLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: ../{published}/python3.12-x86_64/tools.zip
      CompatibleRuntimes: [python3.12]
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ../services/echo
      Handler: echo.handler
      Runtime: python3.12
      MemorySize: 256
      Timeout: 30
      Layers: [!Ref ToolsLayer]
"""

HANDLER = """\
import logging
import tools

logging.getLogger().setLevel(logging.INFO)

def handler(event, context):
    logging.info("got %s", sorted(event))
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"echo": event, "tool": tools.NAME}
"""


def tiny_root(tmp: Path, with_layer: bool = True) -> Path:
    (tmp / "infra").mkdir()
    published = BuildPaths.of(tmp).output_dir("python3.12", "x86_64")
    (tmp / "infra" / "template.yaml").write_text(TEMPLATE.format(published=published.parent.relative_to(tmp)))
    (tmp / "services" / "echo").mkdir(parents=True)
    (tmp / "services" / "echo" / "echo.py").write_text(HANDLER)
    if with_layer:
        source = tmp / "tools-src"  # write_zip puts it under python/, as a layer has it
        source.mkdir()
        (source / "tools.py").write_text("NAME = 'tools'\n")
        published.mkdir(parents=True)
        write_zip(tmp / "tools-src", published / "tools.zip")
    return tmp


def test_without_an_event_file_the_smoke_event_is_sent(tmp_path: Path) -> None:
    assert read_event(None) == smoke_event()
    event = tmp_path / "event.json"
    event.write_text('{"a": [1, 2]}')
    assert read_event(str(event)) == {"a": [1, 2]}


def test_a_missing_or_broken_event_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--event .*nope.json: cannot be read \(No such file or directory\)"):
        read_event(str(tmp_path / "nope.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match=r"--event .*broken.json: not JSON \(Expecting property name"):
        read_event(str(broken))


def test_an_unknown_function_lists_the_templates_logical_ids(tmp_path: Path) -> None:
    root = tiny_root(tmp_path)
    assert template_function(root, "EchoFunction").handler == "echo.handler"
    with pytest.raises(ConfigError, match=r"(?s)has no function 'Echo'.*logical ids: EchoFunction\."):
        template_function(root, "Echo")


def test_a_layer_todays_build_has_not_published_is_named(tmp_path: Path) -> None:
    root = tiny_root(tmp_path, with_layer=False)
    with pytest.raises(ConfigError, match=r"(?s)not published: .*/python3.12-x86_64/tools.zip.*inv build-layers"):
        invoke_built(root, "EchoFunction", {})


def test_todays_build_runs_and_prints_lambdas_lines_and_the_result(tmp_path: Path) -> None:
    result = invoke_built(tiny_root(tmp_path), "EchoFunction", {"x": 1})
    lines = invoke_lines(result)
    request_id = result.invocation.request_id
    assert lines[0] == "Invoking EchoFunction (today's build)"
    assert lines[1] == f"START RequestId: {request_id} Version: $LATEST"
    assert lines[2].startswith("[INFO]\t") and lines[2].endswith(f"\t{request_id}\tgot ['x']")
    assert lines[3] == f"END RequestId: {request_id}"
    assert lines[4].startswith(f"REPORT RequestId: {request_id}\t") and "Init Duration: " in lines[4]
    assert "Memory Size: 256 MB" in lines[4]
    assert json.loads("\n".join(lines[5:])) == {"echo": {"x": 1}, "tool": "tools"}
    raise_if_failed(result)  # a good run raises nothing


def test_a_function_error_is_printed_and_fails_with_its_own_code(tmp_path: Path) -> None:
    result = invoke_built(tiny_root(tmp_path), "EchoFunction", {"fail": True})
    lines = invoke_lines(result)
    assert any(line.startswith("[ERROR] ValueError: asked to fail") for line in lines)
    error = json.loads("\n".join(lines[lines.index(next(x for x in lines if x.startswith("REPORT"))) + 1 :]))
    assert error["errorType"] == "ValueError" and error["requestId"] == result.invocation.request_id
    with pytest.raises(FunctionFailed, match="EchoFunction failed: ValueError: asked to fail") as raised:
        raise_if_failed(result)
    assert raised.value.exit_code == 30


def test_the_task_refuses_bad_input_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    unknown = subprocess.run([*INV, "invoke", "NoSuchFunction"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert unknown.returncode == 2
    assert "has no function 'NoSuchFunction'" in unknown.stderr and "DataValidationFunction" in unknown.stderr
    broken = tmp_path / "event.json"
    broken.write_text("[1,")
    bad_event = subprocess.run(
        [*INV, "invoke", "DataValidationFunction", "--event", str(broken)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert bad_event.returncode == 2 and "not JSON" in bad_event.stderr
    assert "Traceback" not in unknown.stderr + bad_event.stderr


def test_a_download_that_differs_from_the_stages_digest_is_named(tmp_path: Path) -> None:
    artifact = tmp_path / "layer.zip"
    artifact.write_bytes(b"layer bytes")
    digest = base64.b64encode(hashlib.sha256(b"layer bytes").digest()).decode()
    assert code_sha256(artifact) == digest  # Lambda's CodeSha256: base64 of the sha256
    assert digest_problems("arn:layer:1", artifact, digest) == []
    assert digest_problems("arn:layer:1", artifact, "other") == [
        f"arn:layer:1: downloaded {digest}, but the stage says CodeSha256 other"
    ]
