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


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "true", '"100"'])
def test_a_budget_that_is_not_a_finite_positive_number_is_refused(tmp_path: Path, value: str) -> None:
    project = tiny_project(tmp_path, layer_toml=f"budget_mb = {value}\n")
    with pytest.raises(ConfigError, match="'budget_mb' must be a positive number of MB"):
        load_project(project.root)


@pytest.mark.parametrize("value", ["3", '"runtime"', "[1]"])
def test_a_build_setting_that_is_not_a_table_is_refused(tmp_path: Path, value: str) -> None:
    project = tiny_project(tmp_path, layer_toml=f"budget_mb = 1\nbuild = {value}\n")
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    assert "'build' must be a table ([build])" in str(error.value)
    assert "chosen per build" not in str(error.value)


FULL_LAYER = {
    "description": '"d"',
    "budget_mb": "10",
    "target_mb": "5",
    "base_layers": "[]",
    "build": '{ bytecode = "pyc", strip_shared_objects = true }',
    "strip": '{ rules = [{ name = "r", directories = ["x"], keep = [] }] }',
    "aws_sdk": '{ keep_services = ["s3"] }',
    "verify": '{ skip_imports = ["a"] }',
    "layer_tests": '{ allowed_import_failures = { "a.b" = "why" } }',
}
VALUES = ["1", "nan", '"text"', "[1, 2]", "{ a = 1 }", "true", "[[1]]", '{ rules = "x" }']
RIGHT_FOR = {"budget_mb": {"1"}, "target_mb": {"1"}, "description": {'"text"'}}  # the values that fit the key


@pytest.mark.parametrize(
    ("key", "wrong"),
    [(key, value) for key in sorted(FULL_LAYER) for value in VALUES if value not in RIGHT_FOR.get(key, set())],
)
def test_any_wrong_type_anywhere_is_a_config_error_naming_the_key(tmp_path: Path, key: str, wrong: str) -> None:
    toml = "".join(f"{k} = {v}\n" for k, v in {**FULL_LAYER, key: wrong}.items())
    project = tiny_project(tmp_path, layer_toml=toml)
    with pytest.raises(ConfigError) as error:  # accepted, or any other exception, fails the test
        load_project(project.root)
    assert key in str(error.value)


@pytest.mark.parametrize(("key", "right"), [(key, value) for key, values in RIGHT_FOR.items() for value in values])
def test_the_values_that_fit_load(tmp_path: Path, key: str, right: str) -> None:
    toml = "".join(f"{k} = {v}\n" for k, v in {**FULL_LAYER, key: right}.items())
    load_project(tiny_project(tmp_path, layer_toml=toml).root)


def test_a_description_that_is_not_text_is_refused(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml="budget_mb = 1\ndescription = [1, 2]\n")
    with pytest.raises(ConfigError, match="'description' must be a string"):
        load_project(project.root)


def test_the_full_layer_example_is_valid(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml="".join(f"{k} = {v}\n" for k, v in FULL_LAYER.items()))
    layer = load_project(project.root).layer("tinylayer")
    assert layer.bytecode == "pyc"
    assert layer.strip_rules[-1].name == "r"
    assert layer.allowed_import_failures == {"a.b": "why"}
