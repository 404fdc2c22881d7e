"""The patched server's sandbox files: one folder per server, removed by the next server when a
server was killed before it could clean up (local_aws_fixes/lambda_sandboxes.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lambda_ml_layers.local_aws_fixes.lambda_sandboxes import SCRATCH_PREFIX, remove_tree, sweep_stale


def read_only_tree(root: Path) -> Path:
    layer = root / "environments" / "e1" / "opt" / "python"
    layer.mkdir(parents=True)
    (layer / "module.py").write_text("x = 1\n")
    for folder in (layer, layer.parent, layer.parent.parent):
        folder.chmod(0o555)
    return root


def test_a_killed_servers_folder_is_swept_and_a_live_ones_is_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = read_only_tree(tmp_path / f"{SCRATCH_PREFIX}{dead.pid}-abc")
    alive = read_only_tree(tmp_path / f"{SCRATCH_PREFIX}{os.getppid()}-def")
    other = tmp_path / "local-aws-lambda-notapid-x"
    other.mkdir()

    assert sweep_stale(tmp_path) == [gone]
    assert not gone.exists() and alive.exists() and other.exists()
    remove_tree(alive)
    assert not alive.exists()
