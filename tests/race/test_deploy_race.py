"""Two operators at once: two copies of the project (two checkouts) run `inv deploy --stage local`
at the same time against one emulator, with the real `sam` CLI. Each gets its own release number
or a clear refusal naming the other; no record is overwritten; afterwards `inv releases` and the
live aliases (read back with boto3) agree. Slow (two deploys at once, minutes on two cores): run
with `nox -s deploy_race`, not in `-t ci`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from lambda_ml_layers.local.moto_server import moto_server
from tests.integration.test_deploy_local import (
    INV,
    STAGE,
    assert_live_runs_the_current_release,
    copy_checkout,
    environment,
    history,
    ok,
)

pytestmark = pytest.mark.emulator


def test_two_checkouts_deploying_at_once_get_two_numbers_or_a_refusal_naming_the_other(tmp_path: Path) -> None:
    with moto_server() as server:
        first, second = copy_checkout(tmp_path / "first"), copy_checkout(tmp_path / "second")
        ok(
            inv_run := subprocess.run(  # release 1: the stage and its deployment bucket exist
                [str(INV), "--search-root", str(first), "deploy", "--stage", STAGE],
                capture_output=True,
                text=True,
                env=environment(server),
                stdin=subprocess.DEVNULL,
                timeout=1500,
            )
        )
        assert "is on release 1 (verified" in inv_run.stdout + inv_run.stderr
        for root in (first, second):
            handler = root / "services" / "predictions" / "predictions" / "handler.py"
            handler.write_text(handler.read_text() + f"\n# the change of {root.name}\n")
        running = {
            root.name: subprocess.Popen(
                [str(INV), "--search-root", str(root), "deploy", "--stage", STAGE],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=environment(server),
                stdin=subprocess.DEVNULL,
            )
            for root in (first, second)
        }
        outputs = {name: process.communicate(timeout=1500)[0] for name, process in running.items()}
        numbers = []
        for name, process in running.items():
            output, other = outputs[name], running["second" if name == "first" else "first"]
            assert "Traceback" not in output, output[-4000:]
            if process.returncode == 0:
                [number] = re.findall(rf"Stage '{STAGE}' is on release (\d+) \(verified", output)
                numbers.append(int(number))
            else:
                # Refused before anything was uploaded, naming the command that holds the stage.
                assert process.returncode == 15, output[-4000:]
                assert f"Stage {STAGE!r} is busy: `inv deploy --stage {STAGE}`" in output, output[-4000:]
                assert f"pid {other.pid}," in output, output[-4000:]
        assert numbers and len(set(numbers)) == len(numbers), outputs
        releases = history(first, server)
        assert [r["number"] for r in releases] == list(range(1, len(releases) + 1))  # none lost or overwritten
        assert sorted(numbers) == [r["number"] for r in releases[1:]]
        assert all(r["kind"] == "deploy" for r in releases)
        listed = ok(
            subprocess.run(
                [str(INV), "--search-root", str(second), "releases", "--stage", STAGE],
                capture_output=True,
                text=True,
                env=environment(server),
                stdin=subprocess.DEVNULL,
                timeout=600,
            )
        )
        assert "Drift:" not in listed and "MISSING" not in listed and "UNREADABLE" not in listed, listed
        assert_live_runs_the_current_release(first, server)
