"""[prune] end to end on a tiny real layer: config errors, the pruned zip, the report, the cache key,
and a module dropped from keep and trace caught at build time (exit 25), never in production."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import pytest

from lambda_ml_layers.build.artifacts import LayerBuild
from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
from lambda_ml_layers.build.pruning.functions import check_function_imports
from lambda_ml_layers.checks.layer_checks import LayerTestResult, run_layer_tests
from lambda_ml_layers.config.project import ProjectConfig, load_project
from lambda_ml_layers.core.errors import ConfigError, LayerTestFailed, PrunedModuleMissing
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.runtimes import RUNTIMES
from tests.project_factory import REPO, TinyProject, make_wheel, resolution_text, tiny_project, write_layer

PRUNE = """budget_mb = 10

[prune]
packages = ["tinypkg"]
keep = ["tinypkg.contract"]
"""
TRACE = "# Trace of layer tinylayer (python3.12, x86_64)\nmodule tinypkg\nmodule tinypkg.core\n"


def pruned_project(
    tmp_path: Path, layer_toml: str = PRUNE, trace: str | None = TRACE, more: dict[str, str] | None = None
) -> TinyProject:
    project = tiny_project(tmp_path, layer_toml)
    wheel = make_wheel(
        tmp_path / "wheels",
        "tinypkg",
        "1.0.0",
        {
            "tinypkg/__init__.py": "from tinypkg.core import answer\n",
            "tinypkg/core.py": "def answer():\n    return 42\n",
            "tinypkg/contract/__init__.py": "from tinypkg.contract.api import api\n",
            "tinypkg/contract/api.py": "def api():\n    from tinypkg import core\n    return core.answer()\n",
            "tinypkg/unused/__init__.py": "",
            "tinypkg/unused/big.py": "DATA = " + repr("x" * 150_000) + "\n",
            "tinypkg/unused/table.csv": "a,b\n" * 1000,
            **(more or {}),
        },
    )
    write_layer(project.root, "tinylayer", [wheel], layer_toml)
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([wheel]))
    if trace is not None:
        (project.layer_dir("tinylayer") / "trace.txt").write_text(trace)
    (project.layer_dir("tinylayer") / "smoke_test.py").write_text("import tinypkg\nassert tinypkg.answer() == 42\n")
    return project


def build(project: TinyProject) -> dict:  # type: ignore[type-arg]
    return build_layers(BuildRequest(root=project.root, find_links=project.wheels_dir))


def test_config_errors_name_the_file_line_and_fix(tmp_path: Path) -> None:
    toml = PRUNE.replace('keep = ["tinypkg.contract"]', 'keep = ["tinypkg.contract", "numpy.linalg", "bad-name"]')
    project = pruned_project(tmp_path, toml, trace=None)
    with pytest.raises(ConfigError) as error:
        load_project(project.root)
    message = str(error.value)
    layer_toml = project.layer_dir("tinylayer") / "layer.toml"
    assert f"{layer_toml}:5 [prune]: keep 'numpy.linalg' is outside packages (tinypkg)" in message
    assert "'bad-name' is not a dotted module name" in message
    assert "trace manifest" in message and "is missing" in message and "`inv trace-layers` writes it" in message


def test_accepted_imports_need_dotted_names_and_reasons(tmp_path: Path) -> None:
    toml = PRUNE + '\n[prune.accepted_imports]\n"tinypkg.unused" = 3\n"not a module" = "why"\n'
    with pytest.raises(ConfigError) as error:
        load_project(pruned_project(tmp_path, toml).root)
    assert "accepted_imports: give each module a reason" in str(error.value)
    assert "accepted_imports: 'not a module' is not a dotted module name" in str(error.value)


def test_an_upstream_selection_targeting_pruned_code_is_refused(tmp_path: Path) -> None:
    suites = '\n[[upstream_tests.suites]]\nname = "tiny"\nbudget_s = 60\n'
    suites += 'paths = ["tinypkg/contract", "tinypkg/unused"]\n'
    project = pruned_project(tmp_path, PRUNE + suites)
    with pytest.raises(ConfigError, match=r"'tinypkg/unused' tests code \[prune\] may remove.*add 'tinypkg.unused'"):
        load_project(project.root)


def test_an_unknown_package_fails_the_build_naming_its_line(tmp_path: Path) -> None:
    project = pruned_project(tmp_path, PRUNE.replace('packages = ["tinypkg"]', 'packages = ["tinypkg", "tinypk"]'))
    with pytest.raises(ConfigError, match=r"layer.toml:4: \[prune\] names 'tinypk', which is no module.*tinypkg"):
        build(project)
    assert not project.output_zip("tinylayer").exists()


def test_the_pruned_zip_keeps_trace_keep_and_parents_and_the_report_shows_the_parts(tmp_path: Path) -> None:
    project = pruned_project(tmp_path)
    report = build(project)
    names = set(zipfile.ZipFile(project.output_zip("tinylayer")).namelist())
    for kept in ("__init__", "core", "contract/__init__", "contract/api"):
        assert f"python/tinypkg/{kept}.pyc" in names
    assert not any("unused" in name for name in names)  # modules, data and the folder itself
    [layer] = report["layers"]
    assert layer["removed_bytes_by_rule"]["prune: tinypkg.unused"] > 150_000
    [step] = [s for s in layer["steps"] if s["step"] == "prune"]
    assert step["pruned_modules"] == ["tinypkg.unused"]
    assert "tinypkg.unused pruned (3 files, 0.15 MB)" in step["notes"]
    assert layer["verified"]


def test_prune_turned_off_is_still_checked_and_the_layer_is_built_whole(tmp_path: Path) -> None:
    off = PRUNE.replace("[prune]\n", "[prune]\nenabled = false\n")
    with pytest.raises(ConfigError, match=r"keep 'numpy.linalg' is outside packages"):
        load_project(pruned_project(tmp_path / "bad", off.replace('"tinypkg.contract"', '"numpy.linalg"')).root)
    project = pruned_project(tmp_path / "good", off)
    layer = load_project(project.root).layer("tinylayer")
    assert layer.prune is None and layer.prune_option is not None and layer.prune_option.keep == ("tinypkg.contract",)
    build(project)
    assert "python/tinypkg/unused/big.pyc" in zipfile.ZipFile(project.output_zip("tinylayer")).namelist()
    with pytest.raises(ConfigError, match=r"enabled must be true or false"):
        load_project(pruned_project(tmp_path / "typo", off.replace("enabled = false", 'enabled = "no"')).root)


def test_a_changed_manifest_rebuilds_and_an_unchanged_one_is_a_cache_hit(tmp_path: Path) -> None:
    project = pruned_project(tmp_path)
    build(project)
    assert build(project)["layers"][0]["cache_hit"] is True
    (project.layer_dir("tinylayer") / "trace.txt").write_text(TRACE + "module tinypkg.unused\n")
    again = build(project)
    assert again["layers"][0]["cache_hit"] is False
    assert "python/tinypkg/unused/__init__.pyc" in zipfile.ZipFile(project.output_zip("tinylayer")).namelist()


def test_dropping_a_needed_module_from_keep_and_trace_is_caught_at_build_time(tmp_path: Path) -> None:
    project = pruned_project(tmp_path)
    build(project)
    before = project.published_files()
    # tinypkg/__init__ imports tinypkg.core; a regenerated trace that lost the line (and no keep
    # entry for it) would prune it. The build reads the kept code's imports and says what to add.
    (project.layer_dir("tinylayer") / "trace.txt").write_text("module tinypkg.contract\n")
    with pytest.raises(PrunedModuleMissing) as error:
        build(project)
    message = str(error.value)
    assert "python/tinypkg/__init__.py:1 imports tinypkg.core" in message
    assert "add what it needs to [prune] keep (" in message and "layer.toml:5; e.g. 'tinypkg.core')" in message
    assert error.value.exit_code == 25
    assert project.published_files() == before  # the last good build is untouched


def layer_tests(project: TinyProject) -> LayerTestResult:
    python = find_interpreter(RUNTIMES["python3.12"])
    load = load_project(project.root)
    [result] = run_layer_tests(load, "python3.12", python, say=lambda message: None, find_links=project.wheels_dir)
    return result


def test_layer_tests_walk_only_kept_modules_and_count_the_pruned_apart(tmp_path: Path) -> None:
    project = pruned_project(tmp_path)
    build(project)
    result = layer_tests(project)
    assert result.pruned_on_purpose == 2  # tinypkg.unused and tinypkg.unused.big: not imported, not failures
    assert result.modules_checked == 6 and result.failures == []


def test_kept_code_importing_a_pruned_module_when_called_fails_the_build_with_file_and_line(tmp_path: Path) -> None:
    lazy = {
        "tinypkg/contract/lazy.py": "def load():\n    from tinypkg.unused import big\n    return big\n",
        "tinypkg/contract/relative.py": "def load():\n    from ..unused.big import DATA\n    return DATA\n",
    }
    project = pruned_project(tmp_path, more=lazy)
    with pytest.raises(PrunedModuleMissing) as error:
        build(project)
    message = str(error.value)
    assert "python/tinypkg/contract/lazy.py:2 imports tinypkg.unused" in message
    assert "python/tinypkg/contract/relative.py:2 imports tinypkg.unused.big" in message
    assert "add what it needs to [prune] keep (" in message and "[prune.accepted_imports]" in message
    assert error.value.exit_code == 25 and not project.output_zip("tinylayer").exists()
    accepted = '\n[prune.accepted_imports]\n"tinypkg.contract" = "the loaders are never called on Lambda"\n'
    (project.layer_dir("tinylayer") / "layer.toml").write_text(PRUNE + accepted)
    assert build(project)["layers"][0]["verified"]


def test_a_kept_module_needing_a_pruned_one_fails_the_build_s_module_walk_with_the_line_to_add(tmp_path: Path) -> None:
    # contract.extra is kept (keep: tinypkg.contract) and its import is accepted (wrongly), so the import
    # check lets it through; the build's verify imports every module, contract.extra included.
    accepted = '\n[prune.accepted_imports]\n"tinypkg.unused" = "wrongly accepted"\n'
    more = {"tinypkg/contract/extra.py": "import tinypkg.unused.big\n"}
    with pytest.raises(PrunedModuleMissing) as error:
        build(pruned_project(tmp_path, PRUNE + accepted, more=more))
    message = str(error.value)
    assert "import tinypkg.contract.extra: ModuleNotFoundError: No module named 'tinypkg.unused'" in message
    assert "tinypkg.unused was pruned from layer tinylayer by its [prune] section" in message


def test_a_kept_module_needing_a_pruned_one_fails_layer_tests_with_the_line_to_add(tmp_path: Path) -> None:
    # The same module exempt from the build's verify ([verify] skip_imports): layer_tests catch it.
    accepted = '\n[prune.accepted_imports]\n"tinypkg.unused" = "wrongly accepted"\n'
    skipped = '\n[verify]\nskip_imports = ["tinypkg.contract.extra"]\n'
    more = {"tinypkg/contract/extra.py": "import tinypkg.unused.big\n"}
    project = pruned_project(tmp_path, PRUNE + accepted + skipped, more=more)
    build(project)
    with pytest.raises(LayerTestFailed) as error:
        layer_tests(project)
    message = str(error.value)
    assert "import tinypkg.contract.extra: ModuleNotFoundError: No module named 'tinypkg.unused'" in message
    assert "tinypkg.unused was pruned from layer tinylayer by its [prune] section" in message
    assert "`module tinypkg.unused` to" in message


def with_prune_on(project: ProjectConfig, name: str) -> ProjectConfig:
    """The project as a user who turned a layer's shipped `[prune]` on (`enabled = true`) loads it."""
    layer = project.layer(name)
    assert layer.prune is None and layer.prune_option is not None  # shipped whole, pruning an option
    on = dataclasses.replace(layer, prune=dataclasses.replace(layer.prune_option, enabled=True))
    return dataclasses.replace(project, layers=tuple(on if x.name == name else x for x in project.layers))


def built(name: str, zip_path: Path, pruned: list[str]) -> LayerBuild:
    steps = [{"step": "prune", "pruned_modules": pruned, "manifest": "trace.txt"}]
    return LayerBuild(
        name, "python3.12", "x86_64", "key", "sha", 1, 1, 1, 1, None, {}, {}, {}, steps, True, zip_path=str(zip_path)
    )


def test_a_real_function_importing_a_module_its_pruned_layer_lost_fails_with_file_and_line(tmp_path: Path) -> None:
    # FeatureEngineering's features.py imports sklearn.compose and sklearn.preprocessing at the top.
    zip_path = tmp_path / "ml-libraries.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name in ("sklearn/__init__.pyc", "sklearn/preprocessing/__init__.pyc", "joblib/__init__.pyc"):
            archive.writestr(f"python/{name}", b"")
    project = with_prune_on(load_project(REPO), "ml-libraries")
    with pytest.raises(PrunedModuleMissing) as error:
        check_function_imports(project, {"ml-libraries": built("ml-libraries", zip_path, ["sklearn.compose"])})
    message = str(error.value)
    features = REPO / "services" / "feature_engineering" / "feature_engineering" / "features.py"
    assert f"{features}:11: function FeatureEngineeringFunction imports sklearn.compose." in message
    assert "add 'sklearn.compose' to [prune] keep (" in message
    assert "preprocessing" not in message and "PredictionsFunction" not in message
    # The same zip with sklearn.compose in it passes: only what was pruned counts.
    with zipfile.ZipFile(zip_path, "a") as archive:
        archive.writestr("python/sklearn/compose/__init__.pyc", b"")
    check_function_imports(project, {"ml-libraries": built("ml-libraries", zip_path, ["sklearn.compose._x"])})
