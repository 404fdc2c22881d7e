"""The benchmark's scratch configs: a TOML round trip changes only what it means to change."""

import dataclasses
import shutil
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.core.runtimes import LAMBDA_UNZIPPED_LIMIT, MB
from lambda_ml_layers.core.toml_files import read_toml, write_toml
from tests.project_factory import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from layer_benchmark import with_policy


@pytest.mark.parametrize("policy", ["source", "pyc"])
def test_every_layer_gets_the_policy_and_lambdas_budget_and_nothing_else_changes(tmp_path: Path, policy: str) -> None:
    shutil.copytree(REPO / "layers", tmp_path / "layers")
    ml_toml = tmp_path / "layers" / "ml-libraries" / "layer.toml"
    overriding = read_toml(ml_toml)
    overriding.setdefault("build", {})["bytecode"] = "sourceless"  # a layer's own override is rewritten too
    write_toml(ml_toml, overriding)
    for toml in [tmp_path / "layers" / "defaults.toml", *sorted((tmp_path / "layers").glob("*/layer.toml"))]:
        write_toml(toml, with_policy(read_toml(toml), policy, is_defaults=toml.name == "defaults.toml"))
    changed = {layer.name: layer for layer in load_project(tmp_path).layers}
    for layer in load_project(REPO).layers:
        other = changed[layer.name]
        assert (other.bytecode, other.budget_bytes) == (policy, LAMBDA_UNZIPPED_LIMIT // MB * MB)
        fields = {f.name for f in dataclasses.fields(layer)} - {"bytecode", "budget_bytes", "folder", "docstrings"}
        assert {f: getattr(other, f) for f in fields} == {f: getattr(layer, f) for f in fields}
        assert other.docstrings == ("keep" if policy == "source" else layer.docstrings)


def test_the_pruned_copy_turns_prune_on_and_gets_lambdas_budget(tmp_path: Path) -> None:
    from layer_benchmark import with_prune

    shutil.copytree(REPO / "layers", tmp_path / "layers")
    for toml in [tmp_path / "layers" / "defaults.toml", *sorted((tmp_path / "layers").glob("*/layer.toml"))]:
        write_toml(toml, with_prune(read_toml(toml), is_defaults=toml.name == "defaults.toml"))
    changed = {layer.name: layer for layer in load_project(tmp_path).layers}
    assert any(layer.prune_option is not None and layer.prune is None for layer in load_project(REPO).layers)
    for layer in load_project(REPO).layers:
        other = changed[layer.name]
        option = layer.prune_option and dataclasses.replace(layer.prune_option, enabled=True)
        assert (other.prune, other.budget_bytes) == (option, LAMBDA_UNZIPPED_LIMIT // MB * MB)
        fields = {f.name for f in dataclasses.fields(layer)} - {"prune", "prune_option", "budget_bytes", "folder"}
        fields -= {"upstream_tests"} if option else set()
        assert {f: getattr(other, f) for f in fields} == {f: getattr(layer, f) for f in fields}
