"""`inv train-model` as a user runs it: a bad data file or --out is one message with exit 23
(TrainingFailed), not the trainer's traceback. Needs build/venvs/train (made from the layer
locks on first use, which downloads the layers' packages)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.core.errors import TrainingFailed
from tests.project_factory import REPO

pytestmark = pytest.mark.realwheels

INV = [sys.executable, "-m", "invoke", "--search-root", str(REPO)]


def train(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INV, "train-model", *args], capture_output=True, text=True, cwd=REPO, timeout=1800, check=False
    )


def test_a_missing_data_file_exits_23_naming_it(tmp_path: Path) -> None:
    result = train("--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "model"))
    assert result.returncode == TrainingFailed.exit_code == 23, result.stderr
    assert f"Training stopped: training data {tmp_path / 'absent.csv'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_csv_without_the_label_column_exits_23_naming_the_column(tmp_path: Path) -> None:
    sample = (REPO / "data" / "sample" / "transactions.csv").read_text().splitlines()
    data = tmp_path / "unlabelled.csv"
    data.write_text("\n".join(line.rsplit(",", 1)[0] for line in sample) + "\n")
    result = train("--data", str(data), "--out", str(tmp_path / "model"))
    assert result.returncode == 23, result.stderr
    assert "lacks the is_fraud column" in result.stderr
    assert "Traceback" not in result.stderr
