"""The local stage can never be mistaken for another, and its emulator is handled safely, as a user
runs the commands: `inv` in a copy of the checkout, real moto servers, a real `sam deploy`.

- without infra/stages.toml, or without a stage's `emulated` line, `--stage local` is refused
  naming the file (never a real-AWS stage reached with the keys in the environment);
- a stage name from samconfig.toml never becomes a path outside build/;
- a samconfig.toml or stages.toml of the wrong shape is one message, exit 2;
- `inv local-aws --stop` signals only the recorded emulator; a paused one is reported, not replaced;
- an emulator killed in the middle of a deploy is named as the cause, exit 8.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]

from lambda_ml_layers.core.errors import LocalAWSError
from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.deploy.local_emulator import emulator_guard
from lambda_ml_layers.deploy.releases import release_store
from lambda_ml_layers.local.moto_server import MotoServer, moto_server
from lambda_ml_layers.local.process_identity import process_identity
from tests.integration.test_deploy_local import PLANTED_SECRET, copy_checkout

pytestmark = pytest.mark.emulator

REPO = Path(__file__).resolve().parents[2]
INV = REPO / ".venv" / "bin" / "inv"


def small_checkout(destination: Path) -> Path:
    """What `inv releases` and `inv local-aws` read: tasks.py, the engine and infra/."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "tasks.py", destination / "tasks.py")
    for folder in ("lambda_ml_layers", "infra"):
        shutil.copytree(REPO / folder, destination / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def inv(root: Path, *args: str, unset: tuple[str, ...] = (), **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MOTO_PYTHON": str(REPO / ".venv" / "bin" / "python"),
        "SAM_CLI": str(REPO / ".venv-sam" / "bin" / "sam"),
        "CHECKOV": str(REPO / ".venv-checkov" / "bin" / "checkov"),
        # Keys of a real-looking account: an emulated stage must never use them.
        "AWS_ACCESS_KEY_ID": "AKIAPLANTEDKEY000000",
        "AWS_SECRET_ACCESS_KEY": PLANTED_SECRET,
        **extra_env,
    }
    return subprocess.run(
        [str(INV), "--search-root", str(root), *args],
        capture_output=True,
        text=True,
        env={k: v for k, v in env.items() if k not in (*unset, "LAMBDA_ML_LAYERS_LOCAL_AWS") or k in extra_env},
        stdin=subprocess.DEVNULL,
        timeout=1500,
    )


def refused(result: subprocess.CompletedProcess[str], code: int, *said: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == code, output[-4000:]
    assert "Traceback" not in output and PLANTED_SECRET not in output
    for text in said:
        assert text in output, output[-4000:]
    return output


def stop_recorded_emulator(root: Path) -> None:
    """Whatever emulator a test left in build/local-aws.json, ended (only if /proc shows it is one)."""
    state_file = BuildPaths.of(root).local_aws_state
    if not state_file.exists():
        return
    pid = json.loads(state_file.read_text()).get("pid")
    running = process_identity(pid) if isinstance(pid, int) else None
    if running is not None and "lambda_ml_layers.local_aws_fixes" in running.command:
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with moto_server() as running:
        yield running


def test_without_stages_toml_or_its_emulated_line_local_is_refused_naming_the_file(
    tmp_path: Path, server: MotoServer
) -> None:
    root = small_checkout(tmp_path / "checkout")
    stages = root / "infra" / "stages.toml"
    text = stages.read_text()
    stages.unlink()
    # AWS_ENDPOINT_URL stands in for sts.amazonaws.com: had the stage gone to "real AWS", it would answer.
    for command in (("releases", "--stage", "local"), ("rollback", "--stage", "local")):
        result = inv(root, *command, AWS_ENDPOINT_URL=server.endpoint_url)
        refused(result, 2, f"{stages}: file is missing", "git checkout -- infra/stages.toml", "emulated = true")
        assert "rehearse with" not in result.stderr
    stages.write_text(text.replace("[local]\nemulated = true\n", "[local]\n"))
    result = inv(root, "releases", "--stage", "local", AWS_ENDPOINT_URL=server.endpoint_url)
    refused(result, 2, f"{stages} [local]: no `emulated` line", "`emulated = true`")
    assert not BuildPaths.of(root).local_aws_state.exists()  # not even an emulator was started


def test_a_stage_name_from_samconfig_never_becomes_a_path_outside_build(tmp_path: Path, server: MotoServer) -> None:
    root = small_checkout(tmp_path / "checkout")
    victim = root / "tmpvictim"  # build/releases/../../tmpvictim
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    name = "../../tmpvictim"
    with (root / "infra" / "samconfig.toml").open("a") as samconfig:
        samconfig.write(f'\n["{name}".global.parameters]\nstack_name = "victim"\n')
        samconfig.write(f'["{name}".deploy.parameters]\nregion = "us-east-1"\n')
    with (root / "infra" / "stages.toml").open("a") as stages:
        stages.write(f'\n["{name}"]\nemulated = true\n')
    result = inv(root, "releases", "--stage", name, LAMBDA_ML_LAYERS_LOCAL_AWS=server.endpoint_url)
    refused(result, 2, f"stage name '{name}' is not allowed", "letters, digits and '-'")
    assert (victim / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize(
    ("file", "change", "said"),
    [
        (
            "stages.toml",
            lambda text: text.replace("[local]\n", "local = 3\n[old-local]\n", 1),
            "local = 3 must be a table",
        ),
        (
            "samconfig.toml",
            lambda text: text.replace("[local.deploy.parameters]\n", '[local.deploy]\nparameters = "x"\n[local.x]\n'),
            "local.deploy.parameters must be a table",
        ),
    ],
)
def test_a_config_file_of_the_wrong_shape_is_one_message(
    tmp_path: Path, server: MotoServer, file: str, change: object, said: str
) -> None:
    root = small_checkout(tmp_path / "checkout")
    path = root / "infra" / file
    assert callable(change)
    path.write_text(change(path.read_text()))
    refused(inv(root, "releases", "--stage", "local", LAMBDA_ML_LAYERS_LOCAL_AWS=server.endpoint_url), 2, said)


def test_stop_leaves_alone_a_process_that_only_has_the_recorded_pid(tmp_path: Path) -> None:
    root = small_checkout(tmp_path / "checkout")
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        state = BuildPaths.of(root).local_aws_state
        state.parent.mkdir(parents=True)
        state.write_text(json.dumps({"endpoint_url": "http://localhost:9", "pid": sleeper.pid, "log": "x"}))
        output = refused(inv(root, "local-aws", "--stop"), 0, f"pid {sleeper.pid}", "left alone")
        time.sleep(0.5)
        assert sleeper.poll() is None, output
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_paused_emulator_is_reported_and_not_replaced(tmp_path: Path) -> None:
    root = small_checkout(tmp_path / "checkout")
    state_file = BuildPaths.of(root).local_aws_state
    try:
        refused(inv(root, "local-aws"), 0, "Local AWS emulator started at")
        state = json.loads(state_file.read_text())
        pid = state["pid"]
        os.kill(pid, signal.SIGSTOP)
        for command in (("local-aws",), ("releases", "--stage", "local")):
            refused(inv(root, *command), 8, f"(pid {pid}, {state['endpoint_url']}", "is paused", f"kill -CONT {pid}")
            assert json.loads(state_file.read_text()) == state  # no second emulator over its state
        refused(inv(root, "local-aws", "--stop"), 0, f"Stopped the local AWS emulator at {state['endpoint_url']}")
        assert process_identity(pid) is None
        assert not state_file.exists()
    finally:
        stop_recorded_emulator(root)


def test_an_emulator_killed_mid_deploy_is_named_as_the_cause(tmp_path: Path) -> None:
    root = copy_checkout(tmp_path / "checkout")
    state_file = BuildPaths.of(root).local_aws_state
    env = {k: v for k, v in os.environ.items() if k != "LAMBDA_ML_LAYERS_LOCAL_AWS"}
    env |= {
        "MOTO_PYTHON": str(REPO / ".venv" / "bin" / "python"),
        "SAM_CLI": str(REPO / ".venv-sam" / "bin" / "sam"),
        "CHECKOV": str(REPO / ".venv-checkov" / "bin" / "checkov"),
    }
    process = subprocess.Popen(
        [str(INV), "--search-root", str(root), "deploy", "--stage", "local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith("==> sam deploy"):
                time.sleep(3)  # sam is uploading or creating the change set
                os.kill(json.loads(state_file.read_text())["pid"], signal.SIGKILL)
                break
        rest, _ = process.communicate(timeout=900)
    finally:
        if process.poll() is None:
            process.kill()
        stop_recorded_emulator(root)
    output = "".join(seen) + rest
    assert process.returncode == 8, output[-4000:]
    assert "`inv deploy --stage local` stopped: the local emulator died" in output, output[-4000:]
    assert "has ended" in output and "Traceback" not in output


def test_every_command_reading_a_stage_names_its_dead_emulator(tmp_path: Path) -> None:
    """`inv releases`, `inv rollback` and the ops commands against an emulator that was killed:
    exit 8 naming the command, the stage and the fix; rollback never starts a new, empty
    emulator and reads it as a stage without releases."""
    root = small_checkout(tmp_path / "checkout")
    report = BuildPaths.of(root).default_report
    report.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BuildPaths.of(REPO).default_report, report)  # size-report reads today's build first
    state_file = BuildPaths.of(root).local_aws_state
    try:
        refused(inv(root, "local-aws"), 0, "Local AWS emulator started at")
        state = json.loads(state_file.read_text())
        os.kill(state["pid"], signal.SIGKILL)
        for _ in range(50):
            if process_identity(state["pid"]) is None:
                break
            time.sleep(0.1)
        for command in (
            ("releases", "--stage", "local"),
            ("rollback", "--stage", "local", "--yes"),
            ("layer-usage", "--stage", "local"),
            ("cold-starts", "--stage", "local"),
            ("prune-layers", "--stage", "local", "--keep", "1"),
            ("size-report", "--stage", "local"),
        ):
            said = f"`inv {command[0]} --stage local` has nothing to read"
            refused(inv(root, *command), 8, "is gone (pid", said, "Fix:", "`inv deploy --stage local`")
            assert json.loads(state_file.read_text()) == state  # no new, empty emulator started
    finally:
        stop_recorded_emulator(root)


def test_an_emulator_dying_while_the_history_is_read_is_exit_8_not_a_connection_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = small_checkout(tmp_path / "checkout")
    with moto_server() as running:
        monkeypatch.setenv("LAMBDA_ML_LAYERS_LOCAL_AWS", running.endpoint_url)
        store = release_store(root, "local")
    # The emulator is gone between reaching the stage and reading it: botocore's error, unguarded.
    with pytest.raises(BotoCoreError):
        store.history()
    with (
        pytest.raises(LocalAWSError, match=r"`inv releases --stage local` stopped: the local emulator died") as raised,
        emulator_guard(BuildPaths.of(root), store.session.endpoint_url, "inv releases --stage local"),
    ):
        store.history()
    assert raised.value.exit_code == 8 and "Fix:" in str(raised.value)
