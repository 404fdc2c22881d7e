"""The local emulator's pid is signalled only while it is the emulator; a paused one is reported, not
replaced. Real processes (`sleep`) stand in for the emulator: nothing here starts a moto server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambda_ml_layers.core.errors import LocalAWSError
from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.deploy.local_emulator import emulator_endpoint, emulator_failure, stop_emulator
from lambda_ml_layers.local.moto_server import free_port
from lambda_ml_layers.local.process_identity import parse_stat, process_identity


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own group, as the emulator is: what `os.killpg(pid)` would end."""
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    # Popen returns once exec has begun, before the kernel sets the new command line: read too
    # early, /proc shows an empty one, and the identity recorded would never match again.
    deadline = time.monotonic() + 10
    while (found := process_identity(process.pid)) is None or found.command != ("sleep", "300"):
        assert time.monotonic() < deadline, f"pid {process.pid} did not show `sleep 300`"
        time.sleep(0.01)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.wait()


def pause(pid: int) -> None:
    """SIGSTOP, and wait until /proc shows it stopped (the signal is delivered asynchronously)."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = process_identity(pid)
        if found is not None and found.stopped:
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} did not stop")


def write_state(paths: BuildPaths, state: dict[str, object]) -> None:
    paths.local_aws_state.parent.mkdir(parents=True, exist_ok=True)
    paths.local_aws_state.write_text(json.dumps(state))


def identity_of(pid: int) -> dict[str, object]:
    found = process_identity(pid)
    assert found is not None
    return {"command": list(found.command), "start_ticks": found.start_ticks, "boot_id": found.boot_id}


def alive(process: subprocess.Popen[bytes]) -> bool:
    time.sleep(0.3)
    return process.poll() is None


def test_the_proc_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses() -> None:
    line = "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 " + "0 " * 30
    assert parse_stat(line) == ("S", 4242, 987654)
    me = process_identity(os.getpid())
    assert me is not None and me.pid == os.getpid() and me.command and me.start_ticks > 0 and me.boot_id
    assert process_identity(0) is None


@pytest.mark.parametrize("recorded", ["pid only", "another start time", "another command"])
def test_stop_never_signals_a_process_that_is_not_the_recorded_emulator(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], recorded: str
) -> None:
    paths = BuildPaths.of(tmp_path)
    state: dict[str, object] = {"endpoint_url": "http://localhost:9", "pid": sleeper.pid}
    identity = identity_of(sleeper.pid)
    if recorded == "another start time":
        state |= {**identity, "start_ticks": int(str(identity["start_ticks"])) - 1}
    elif recorded == "another command":
        state |= {**identity, "command": ["python", "-m", "lambda_ml_layers.local_aws_fixes"]}
    write_state(paths, state)
    said = stop_emulator(paths)
    assert alive(sleeper), said
    assert "No process was signalled" in said and f"pid {sleeper.pid}" in said and "left alone" in said
    assert not paths.local_aws_state.exists()


def test_stop_ends_the_recorded_process_when_it_is_the_one_recorded_even_paused(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    paths = BuildPaths.of(tmp_path)
    write_state(paths, {"endpoint_url": "http://localhost:9", "pid": sleeper.pid, **identity_of(sleeper.pid)})
    pause(sleeper.pid)
    said = stop_emulator(paths)
    assert sleeper.wait(timeout=15) == -signal.SIGTERM
    assert f"Stopped the local AWS emulator at http://localhost:9 (pid {sleeper.pid})" in said


def test_a_paused_emulator_is_reported_with_its_pid_and_not_replaced(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAMBDA_ML_LAYERS_LOCAL_AWS", raising=False)
    paths = BuildPaths.of(tmp_path)
    endpoint = f"http://localhost:{free_port()}"
    write_state(paths, {"endpoint_url": endpoint, "pid": sleeper.pid, **identity_of(sleeper.pid)})
    before = paths.local_aws_state.read_text()
    pause(sleeper.pid)
    said: list[str] = []
    with pytest.raises(LocalAWSError) as error:
        emulator_endpoint(paths, start=False, say=said.append)
    message = str(error.value)
    assert f"The local AWS emulator (pid {sleeper.pid}, {endpoint}" in message and "is paused" in message
    assert f"kill -CONT {sleeper.pid}" in message and "inv local-aws --stop" in message
    assert "No second emulator was started" in message
    assert paths.local_aws_state.read_text() == before and not said
    assert alive(sleeper)


def test_a_failure_on_a_dead_emulator_says_the_emulator_died(tmp_path: Path) -> None:
    paths = BuildPaths.of(tmp_path)
    endpoint = f"http://localhost:{free_port()}"  # nothing listens: as after the server was killed
    ended = subprocess.Popen(["true"])
    ended.wait()
    write_state(paths, {"endpoint_url": endpoint, "pid": ended.pid, "command": ["x"], "start_ticks": 1, "boot_id": ""})
    message = emulator_failure(paths, endpoint, "inv deploy --stage local")
    assert message is not None
    assert f"`inv deploy --stage local` stopped: the local emulator died ({endpoint}, pid {ended.pid} has ended)" in (
        message
    )
    assert "inv deploy --stage local` starts a new, empty emulator" in message


def test_without_proc_nothing_is_signalled_and_the_pid_is_named(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a system without /proc (macOS) the identity cannot be proved: the pid is named, not signalled."""
    paths = BuildPaths.of(tmp_path)
    write_state(paths, {"endpoint_url": "http://localhost:9", "pid": sleeper.pid, **identity_of(sleeper.pid)})
    monkeypatch.setattr("lambda_ml_layers.deploy.local_emulator.PROC", tmp_path / "no-proc")
    said = stop_emulator(paths)
    assert alive(sleeper), said
    assert f"no {tmp_path / 'no-proc'} to prove that pid {sleeper.pid} is still the emulator" in said
    assert f"kill {sleeper.pid}" in said
