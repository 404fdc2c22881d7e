"""The Lambda-like sandbox on tiny hand-made layers and functions (no network)."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from lambda_ml_layers.config.template import FunctionSpec
from lambda_ml_layers.core.errors import InstallError
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.layer_zip import write_zip
from lambda_ml_layers.core.runtimes import RUNTIMES
from lambda_ml_layers.local.runtime_client import runtime_client_dir
from lambda_ml_layers.local.sandbox import LambdaSandbox, log_lines, report_line

RUNTIME = RUNTIMES["python3.12"]

HANDLER = """\
import os, sys, time
import shared
INITS = []
INITS.append(1)

def main(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("allocate_mb"):
        block = bytearray(event["allocate_mb"] * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])
    if event.get("fail"):
        raise ValueError("bad batch")
    if event.get("import"):
        __import__(event["import"])
    print("handling", event.get("n"))
    return {
        "inits": len(INITS),
        "shared": shared.WHO,
        "tmp": os.environ["CACHE_DIR"],
        "name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "path": sys.path[:3],
    }
"""


def layer_zip(tmp: Path, name: str, files: dict[str, str]) -> Path:
    source = tmp / f"{name}-src"
    for rel, text in files.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text(text)
    write_zip(source, tmp / f"{name}.zip")
    return tmp / f"{name}.zip"


def sandbox(tmp: Path, timeout: int = 30, memory: int = 512, layers: list[Path] | None = None) -> LambdaSandbox:
    code = tmp / "function"
    (code / "fn").mkdir(parents=True)
    (code / "fn" / "__init__.py").write_text("")
    (code / "fn" / "handler.py").write_text(HANDLER)
    (code / "tests").mkdir()
    (code / "tests" / "test_fn.py").write_text("x = 1\n")
    (code / "requirements.in").write_text("# nothing\n")
    spec = FunctionSpec(
        name="Tiny",
        code_dir=code,
        handler="fn.handler.main",
        runtime="python3.12",
        arch="x86_64",
        layers=("first", "second"),
        memory_mb=memory,
        timeout_s=timeout,
        environment={"CACHE_DIR": "/tmp/cache", "STAGE": "test"},
    )
    if layers is None:
        layers = [
            layer_zip(tmp, "first", {"shared.py": "WHO = 'first'\n"}),
            layer_zip(tmp, "second", {"shared.py": "WHO = 'second'\n"}),
        ]
    return LambdaSandbox(spec, layers, find_interpreter(RUNTIME), RUNTIME, workdir=tmp / "sandbox")


def test_cold_then_warm_with_lambdas_layout(tmp_path: Path) -> None:
    with sandbox(tmp_path) as box:
        first = box.invoke({"n": 1})
        second = box.invoke({"n": 2})
        assert first.ok and second.ok, first.error
        assert first.cold and not second.cold
        assert first.init_seconds is not None and second.init_seconds is None
        assert first.result["inits"] == second.result["inits"] == 1  # module state survives warm starts
        assert first.result["shared"] == "second"  # the later layer's file overwrote the earlier one's
        assert first.result["tmp"] == str(box.tmp / "cache")
        assert first.result["name"] == "Tiny"
        assert 0 < first.result["remaining_ms"] <= 30_000
        assert first.result["path"] == [
            str(box.task),
            str(box.opt / "python/lib/python3.12/site-packages"),
            str(box.opt / "python"),
        ]
        assert "handling 2" in second.logs and "handling 1" not in second.logs
        assert not (box.task / "tests").exists() and not (box.task / "requirements.in").exists()
        assert not os.stat(box.task / "fn" / "handler.py").st_mode & 0o222
        assert not os.stat(box.opt / "python" / "shared.py").st_mode & 0o222


def test_host_packages_are_invisible(tmp_path: Path) -> None:
    with sandbox(tmp_path) as box:
        result = box.invoke({"import": "pytest"})
    assert result.error is not None
    assert result.error["errorType"] == "ModuleNotFoundError"


def test_handler_exception_gives_lambdas_error_document(tmp_path: Path) -> None:
    with sandbox(tmp_path) as box:
        result = box.invoke({"fail": True})
        assert result.error is not None
        assert result.error["errorType"] == "ValueError"
        assert result.error["errorMessage"] == "bad batch"
        assert "ValueError: bad batch" in result.logs
        assert box.invoke({}).ok  # the environment survives a handler error


def test_missing_module_fails_init(tmp_path: Path) -> None:
    with sandbox(tmp_path, layers=[]) as box:
        result = box.invoke({})
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'fn.handler': No module named 'shared'" in result.error["errorMessage"]


def test_timeout_discards_the_environment(tmp_path: Path) -> None:
    with sandbox(tmp_path, timeout=1) as box:
        result = box.invoke({"sleep": 5})
        assert result.error == {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 1.00 seconds"}
        assert box.invoke({}).cold


def test_memory_over_the_functions_figure_is_an_error(tmp_path: Path) -> None:
    with sandbox(tmp_path, memory=128) as box:
        result = box.invoke({"allocate_mb": 200})
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.OutOfMemory"
    assert result.max_memory_mb > 128


def test_max_memory_is_the_functions_own_not_its_starters(tmp_path: Path) -> None:
    # The moto server starts sandboxes while holding hundreds of MB; Linux carries ru_maxrss across
    # fork and exec, so only the runtime's own VmHWM says what the function used.
    held = bytearray(300 * 1024 * 1024)
    held[::4096] = b"x" * len(held[::4096])
    with sandbox(tmp_path, memory=1024) as box:
        small = box.invoke({"n": 1})
        large = box.invoke({"allocate_mb": 200})
    assert small.ok and large.ok, small.error or large.error
    assert small.max_memory_mb < 150 < large.max_memory_mb < 300, (small.max_memory_mb, large.max_memory_mb)
    del held


@pytest.mark.parametrize("layers", [1, 2])
def test_extracted_bytes_count_task_and_every_layer(tmp_path: Path, layers: int) -> None:
    zips = [layer_zip(tmp_path, f"l{i}", {f"m{i}.py": "x" * 1000}) for i in range(layers)]
    with sandbox(tmp_path, layers=zips) as box:
        code = len(HANDLER) + 0  # fn/__init__.py is empty
        assert box.extracted_bytes == code + 1000 * layers


# Each row of issue 20's table: what AWS's runtime client (awslambdaric) does, which the sandbox's
# old home-made runtime did differently.
CONTEXT_HANDLER = """\
import logging, os
if os.environ.get("FAIL_AT_IMPORT"):
    raise RuntimeError("bad at import")
logging.getLogger().setLevel(logging.INFO)

def main(event, context):
    logging.info("handling %s", event.get("n"))
    if event.get("fail"):
        raise ValueError("bad batch")
    return {
        "memory": context.memory_limit_in_mb,
        "client_context": context.client_context.custom if context.client_context else None,
        "identity": type(context.identity).__name__,
        "has_log": callable(getattr(context, "log", None)),
        "request_id": context.aws_request_id,
    }
"""


def context_sandbox(
    tmp: Path, handler: str = "fn.handler.main", environment: dict[str, str] | None = None
) -> LambdaSandbox:
    box = sandbox(tmp)
    (box.spec.code_dir / "fn" / "handler.py").write_text(CONTEXT_HANDLER)
    box.spec = replace(box.spec, handler=handler)
    box.extra_environment = environment or {}
    return box


def test_the_context_is_the_runtime_clients(tmp_path: Path) -> None:
    with context_sandbox(tmp_path) as box:
        result = box.invoke({"n": 1}, client_context={"custom": {"caller": "test"}})
    assert result.ok, result.error
    assert result.result["memory"] == "512"  # a string, as on Lambda
    assert result.result["client_context"] == {"caller": "test"}
    assert result.result["identity"] == "CognitoIdentity" and result.result["has_log"]
    assert result.result["request_id"] == result.request_id


def test_an_exception_at_import_is_reported_as_lambda_does(tmp_path: Path) -> None:
    with context_sandbox(tmp_path, environment={"FAIL_AT_IMPORT": "1"}) as box:
        result = box.invoke({})
        assert result.error is not None
        assert result.error["errorType"] == "RuntimeError" and result.error["errorMessage"] == "bad at import"
        assert "[ERROR] RuntimeError: bad at import" in result.logs
        assert result.cold and box.invoke({}).cold  # a failed init leaves no environment to reuse


def test_a_missing_handler_is_named_as_lambda_names_it(tmp_path: Path) -> None:
    with context_sandbox(tmp_path, handler="fn.handler.missing") as box:
        result = box.invoke({})
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.HandlerNotFound"
    assert result.error["errorMessage"] == "Handler 'missing' missing on module 'fn.handler'"


def test_the_stack_trace_has_user_frames_only_and_the_request_id(tmp_path: Path) -> None:
    with context_sandbox(tmp_path) as box:
        result = box.invoke({"fail": True})
    assert result.error is not None and result.error["requestId"] == result.request_id
    frames = result.error["stackTrace"]
    assert len(frames) == 1 and 'handler.py", line 9, in main' in frames[0]


def test_logging_lines_carry_level_time_and_request_id(tmp_path: Path) -> None:
    with context_sandbox(tmp_path) as box:
        result = box.invoke({"n": 7})
    line = next(line for line in result.logs.splitlines() if line.endswith("handling 7"))
    level, stamp, request_id, message = line.split("\t")
    assert (level, request_id, message) == ("[INFO]", result.request_id, "handling 7")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)


def test_start_end_report_lines_come_from_the_sandboxs_measurements(tmp_path: Path) -> None:
    with context_sandbox(tmp_path) as box:
        cold, warm = box.invoke({"n": 1}), box.invoke({"n": 2})
    lines = log_lines(cold)
    assert lines[0] == f"START RequestId: {cold.request_id} Version: $LATEST"
    assert lines[-2] == f"END RequestId: {cold.request_id}"
    report = dict(field.split(": ", 1) for field in lines[-1].strip("\t").split("\t"))
    assert report["REPORT RequestId"] == cold.request_id and report["Memory Size"] == "512 MB"
    assert 0 < float(report["Init Duration"].removesuffix(" ms")) == pytest.approx(cold.init_seconds * 1000, abs=0.01)
    assert cold.import_seconds is not None and 0 < cold.import_seconds < cold.init_seconds
    assert 10 < cold.max_memory_mb < 200  # the runtime process's own peak, not the configured size
    assert "Init Duration" not in report_line(warm) and warm.duration_seconds < 1


def test_a_missing_runtime_client_lock_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match=r"(?s)awslambdaric, locked in .*lambda-runtime.txt.*nox -s lock_tooling"):
        runtime_client_dir(RUNTIME, "x86_64", root=tmp_path, lock=tmp_path / "requirements" / "lambda-runtime.txt")
