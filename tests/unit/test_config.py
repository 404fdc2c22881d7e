from pathlib import Path

import pytest

from lambda_ml_layers.config import build_order, load_project
from lambda_ml_layers.errors import ConfigError
from tests.project_factory import REPO, tiny_project


def test_the_repository_config_loads_with_bases_before_dependents() -> None:
    project = load_project(REPO)
    order = [layer.name for layer in build_order(project)]
    assert order.index("core-data-science") < order.index("ml-libraries")
    assert order.index("core-data-science") < order.index("aws-utilities")
    assert project.layer("aws-utilities").aws_services is not None
    assert "s3" in project.layer("aws-utilities").aws_services  # type: ignore[operator]


def test_building_one_layer_includes_its_base_layers() -> None:
    project = load_project(REPO)
    assert [layer.name for layer in build_order(project, ["ml-libraries"])] == ["core-data-science", "ml-libraries"]


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml="budget_mb = = 10\n")
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    assert "tinylayer/layer.toml" in str(error.value)
    assert "not valid TOML" in str(error.value)


def test_unknown_key_suggests_the_close_match(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml="budget_mbb = 10\n")
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    assert "unknown key 'budget_mbb'" in str(error.value)
    assert "Perhaps you meant 'budget_mb'?" in str(error.value)


def test_budget_above_lambdas_limit_is_refused(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml="budget_mb = 300\n")
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    assert "262,144,000" in str(error.value)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml='budget_mb = -1\nbase_layers = ["core"]\n[build]\nbytecode = "fast"\n')
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    message = str(error.value)
    assert "positive number" in message
    assert "base layer 'core' does not exist" in message
    assert "bytecode 'fast'" in message


def test_base_layer_cycle_is_refused(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml='budget_mb = 1\nbase_layers = ["tinylayer"]\n')
    with pytest.raises(ConfigError, match="cycle"):
        load_project(project.root)


def test_runtime_is_not_a_per_layer_setting(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml='budget_mb = 1\n[build]\nruntime = "python3.12"\n')
    with pytest.raises(ConfigError, match="chosen per build"):
        load_project(project.root)
