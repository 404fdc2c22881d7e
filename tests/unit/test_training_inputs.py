"""`inv train-model` reads stages and locks through the engine's one stage reader and one lock reader."""

from pathlib import Path

import pytest

from lambda_ml_layers.core.errors import ConfigError, LockError
from lambda_ml_layers.local.training import TrainRequest, merged_layer_requirements, train_model
from tests.project_factory import REPO, tiny_project


def test_an_unknown_stage_gets_the_stage_readers_message_and_close_match() -> None:
    with pytest.raises(
        ConfigError, match=r"Unknown stage 'prd': .* defines local, dev, staging, prod\. Perhaps you meant 'prod'\?"
    ):
        train_model(TrainRequest(root=REPO, stage="prd"))


def test_a_stale_layer_lock_is_refused_as_the_build_refuses_it(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    (project.layer_dir("tinylayer") / "requirements.in").write_text("tinypkg\notherpkg\n")
    with pytest.raises(LockError, match=r"otherpkg is in requirements\.in but not locked"):
        merged_layer_requirements(project.root)


def test_a_lock_in_a_folder_that_is_no_layer_is_refused_not_merged(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    (project.layer_dir("tinylayer") / "layer.toml").rename(project.layer_dir("tinylayer") / "layer.tml")
    with pytest.raises(ConfigError, match=r"without layer\.toml"):
        merged_layer_requirements(project.root)


def test_the_merged_requirements_pin_every_layer_package_with_its_hashes(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    [line] = merged_layer_requirements(project.root).splitlines()
    assert line.startswith("tinypkg==1.0.0 ") and "--hash=sha256:" in line
