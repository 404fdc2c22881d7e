"""The one subprocess runner: real commands, and the engine's shape around it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.core.command_runner import call
from lambda_ml_layers.core.errors import InstallError, ToolMissing
from lambda_ml_layers.target_scripts import FOLDER as TARGET_SCRIPTS
from tests.project_factory import REPO

ENGINE = REPO / "lambda_ml_layers"
# Long-running processes the engine talks to while they run; each Popen carries a comment why.
# Long-running processes the engine talks to or must stop as a group: the moto server, the
# sandbox's runtime, a library's test suite under its time budget (killed with all it started).
ALLOWED_SUBPROCESS = {
    "core/command_runner.py",
    "local/moto_server.py",
    "local/sandbox.py",
    "checks/upstream_tests/pytest_run.py",
}


def test_a_failure_raises_the_call_sites_error_with_the_command_and_last_lines() -> None:
    script = "import sys; print('line one'); print('the reason', file=sys.stderr); sys.exit(3)"
    with pytest.raises(InstallError) as caught:
        call([sys.executable, "-c", script], error=InstallError, what="install things")
    text = str(caught.value)
    assert text.startswith("install things failed (exit 3): ")
    assert text.endswith("line one\nthe reason")


def test_input_reaches_stdin_and_stderr_can_be_kept_apart() -> None:
    script = "import sys; data = sys.stdin.read(); print(data.upper()); print('log', file=sys.stderr)"
    result = call([sys.executable, "-c", script], input="json", split_stderr=True)
    assert (result.stdout, result.output) == ("JSON\n", "log\n")


def test_a_timeout_kills_and_is_reported_or_raised() -> None:
    command = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(30)"]
    result = call(command, timeout=1, error=None)
    assert result.timed_out and result.returncode != 0
    with pytest.raises(InstallError, match=r"did not finish within 1 s"):
        call(command, timeout=1, error=InstallError)


def test_a_missing_program_is_tool_missing() -> None:
    with pytest.raises(ToolMissing, match="no-such-program-xyz: not found"):
        call(["no-such-program-xyz"])


def test_streamed_lines_reach_echo_as_they_come() -> None:
    seen: list[str] = []
    result = call([sys.executable, "-c", "print('a'); print('b')"], echo=seen.append)
    assert seen == ["a", "b"] and result.output == "a\nb"


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_runner_and_long_running_processes_use_subprocess() -> None:
    users = sorted(
        str(path.relative_to(ENGINE)) for path in ENGINE.rglob("*.py") if "subprocess" in imported_modules(path)
    )
    assert set(users) <= ALLOWED_SUBPROCESS, users


def test_target_scripts_import_only_the_standard_library() -> None:
    # They run in the target interpreter, which has none of the engine's dependencies (nor the engine).
    scripts = sorted(p for p in TARGET_SCRIPTS.glob("*.py") if p.name != "__init__.py")
    assert len(scripts) >= 5
    for script in scripts:
        foreign = imported_modules(script) - set(sys.stdlib_module_names) - {"__future__"}
        assert not foreign, f"{script.name} imports {foreign}"
