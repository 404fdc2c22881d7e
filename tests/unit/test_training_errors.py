"""How `inv train-model` reads the trainer's explained failure (trainer.py prints "error: ..." and exits 4)."""

from __future__ import annotations

from lambda_ml_layers.local.training import trainer_error


def test_the_trainers_last_error_line_is_the_message() -> None:
    stderr = "UserWarning: something\nerror: first\nnoise\nerror: training data x.csv does not exist.\n"
    assert trainer_error(stderr) == "training data x.csv does not exist."


def test_without_an_error_line_there_is_no_explained_failure() -> None:
    assert trainer_error("Traceback (most recent call last):\n  ...\nKeyError: 'is_fraud'\n") is None
