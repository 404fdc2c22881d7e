import shutil
from pathlib import Path

import pytest

from lambda_ml_layers.config.project import build_order, load_project
from lambda_ml_layers.config.rules import LAYER_NAME_PREFIX
from lambda_ml_layers.config.template import load_template, template_layers
from lambda_ml_layers.core.errors import ConfigError
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


def test_a_broken_base_layer_is_reported_as_its_own_files_problem_not_as_missing(tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(REPO / "layers", root / "layers")
    broken = root / "layers" / "core-data-science" / "layer.toml"
    broken.write_text(broken.read_text() + "budget_mb = = 3\n")
    with pytest.raises(ConfigError) as error:
        load_project(root)
    problems = [line for line in str(error.value).splitlines() if line.startswith("  - ")]
    line = len(broken.read_text().splitlines())
    assert problems == [
        f"  - {broken}: not valid TOML: Invalid value (at line {line}, column 13). Fix the syntax and run again."
    ]


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


# --- one cause, one message (issue 9 item 15) ------------------------------------------


def problem_lines(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [line for line in str(error.value).splitlines() if line.strip().startswith("- ")] or [str(error.value)]


def test_a_missing_defaults_toml_is_one_message(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    (project.root / "layers" / "defaults.toml").unlink()
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    path = project.root / "layers" / "defaults.toml"
    assert problem_lines(error) == [f"{path}: file is missing. Restore it (git checkout -- {path}) or create it."]


def test_an_empty_defaults_toml_is_one_message_naming_the_missing_settings(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    (project.root / "layers" / "defaults.toml").write_text("")
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    lines = problem_lines(error)
    assert len(lines) == 1, lines
    assert "runtime, arch, bytecode, strip_shared_objects not set" in lines[0]
    assert "None" not in str(error.value)


@pytest.mark.parametrize(
    ("content", "cause"), [(b"\xef\xbb\xbfbudget_mb = 10\n", "byte order mark"), (b"budget_mb = = 10\n", "line 1")]
)
def test_an_unreadable_layer_toml_is_one_message(tmp_path: Path, content: bytes, cause: str) -> None:
    project = tiny_project(tmp_path)
    (project.layer_dir("tinylayer") / "layer.toml").write_bytes(content)
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    lines = problem_lines(error)
    assert len(lines) == 1, lines
    assert "tinylayer/layer.toml" in lines[0] and cause in lines[0]
    assert "positive number" not in str(error.value)


# --- keep_services (issue 9 item 3), layer folders (item 6), names (item 17) ----------


def test_an_empty_keep_services_is_refused_with_the_fix(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml="budget_mb = 1\n[aws_sdk]\nkeep_services = []\n")
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    assert "tinylayer/layer.toml [aws_sdk]: keep_services is empty" in str(error.value)
    assert "remove keep_services" in str(error.value)


def test_a_layer_folder_without_layer_toml_is_an_error_naming_it(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    folder = project.layer_dir("tinylayer")
    (folder / "layer.toml").rename(folder / "layers.toml")
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    assert f"{folder}: a folder under layers/ without layer.toml (it has layers.toml)" in str(error.value)
    assert "name its settings file layer.toml" in str(error.value)


def test_hidden_folders_under_layers_are_not_layers(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    (project.root / "layers" / ".ipynb_checkpoints").mkdir()
    (project.root / "layers" / "__pycache__").mkdir()
    assert load_project(project.root).layer_names == ["tinylayer"]


def rename_layer(project_root: Path, new: str, old: str = "tinylayer") -> None:
    (project_root / "layers" / old).rename(project_root / "layers" / new)


@pytest.mark.parametrize(("name", "shown"), [("my layer", "' '"), ("café", "'é'"), ("a\\b", "'\\\\'")])
def test_a_layer_name_lambda_refuses_is_refused_naming_folder_and_rule(tmp_path: Path, name: str, shown: str) -> None:
    project = tiny_project(tmp_path)
    rename_layer(project.root, name)
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    message = str(error.value)
    assert f"layers/{name}: layer folder name" in message
    assert shown in message
    assert "only ASCII letters, digits, '-' and '_'" in message


def test_a_layer_name_too_long_with_the_longest_stage_prefix_is_refused(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    (project.root / "infra").mkdir()
    shutil.copy(REPO / "infra" / "samconfig.toml", project.root / "infra" / "samconfig.toml")
    fits = "x" * (64 - len("lambda-ml-layers-staging-"))
    rename_layer(project.root, fits)
    assert load_project(project.root).layer_names == [fits]
    rename_layer(project.root, fits + "y", old=fits)
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    assert f"'lambda-ml-layers-staging-{fits}y', 65 characters; Lambda allows at most 64" in str(error.value)


def test_the_template_names_layers_as_the_name_rule_assumes() -> None:
    template = load_template(REPO / "infra" / "template.yaml")
    for layer in template_layers(template).values():
        layer_name = template["Resources"][layer.logical_id]["Properties"]["LayerName"]
        expected = LAYER_NAME_PREFIX.format(stage="${Stage}") + layer.layer_name
        assert layer_name == {"Fn::Sub": expected}, layer.logical_id


def test_relayout_shared_objects_is_on_by_default_and_a_layer_may_turn_it_off(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, layer_toml="budget_mb = 10\n[build]\nrelayout_shared_objects = false\n")
    assert [layer.relayout_shared_objects for layer in load_project(project.root).layers] == [False]
    default = tiny_project(tmp_path / "default")
    assert [layer.relayout_shared_objects for layer in load_project(default.root).layers] == [True]
    wrong = tiny_project(tmp_path / "wrong", layer_toml='budget_mb = 10\n[build]\nrelayout_shared_objects = "no"\n')
    with pytest.raises(ConfigError) as error:
        load_project(wrong.root)
    assert "[build]: relayout_shared_objects must be true or false." in str(error.value)
