"""The model `inv train-model` ships, judged as issue 21 asks: on a fresh batch drawn with another
seed than its training data, it flags within 2x of the generator's true fraud rate. The same
measurement as benchmarks/flag_rate.py (which runs it at 5k, 100k and 1M rows, not in CI), here
at about 20,000 rows. The model comes from build/model-cache/ when its inputs are unchanged (the
other integration tests train the same one through upload_trained_model), so this test pays for
training only when it is the first to need the model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.local.training import VENV, TrainRequest, train_model
from tests.project_factory import REPO

pytestmark = pytest.mark.realwheels

SEED = 20240603  # neither the training data's (20240601) nor the benchmark's (20240602)


def test_the_shipped_model_flags_within_2x_of_the_true_rate_on_another_seed(tmp_path: Path) -> None:
    model = tmp_path / "model"
    train_model(TrainRequest(root=REPO, out_dir=model), log=lambda line: None)
    manifest = json.loads((model / "model.json").read_text())
    assert manifest["metrics"]["train_rows"] > 150_000  # the realistic set, not the sample

    batch = tmp_path / "batch.csv"
    generator = REPO / "data" / "generate_transactions.py"
    subprocess.run([sys.executable, generator, "--cards", "750", "--seed", str(SEED), "--out", batch], check=True)
    scored = subprocess.run(
        [REPO / VENV / "bin" / "python", REPO / "benchmarks" / "flag_rate.py", "--score", batch, "--model", model],
        capture_output=True,
        text=True,
        check=False,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    result = json.loads(scored.stdout.strip().splitlines()[-1])

    assert result["rows"] > 15_000 and result["true_rate"] > 0.02
    assert 0.5 <= result["flag_rate"] / result["true_rate"] <= 2, result
    assert result["precision"] > 0.8 and result["recall"] > 0.8, result
    # The recorded expected rate is what the alarms' band is centred on: it matches a fresh batch too.
    assert 0.5 <= result["flag_rate"] / manifest["expected_flag_rate"] <= 2, result
