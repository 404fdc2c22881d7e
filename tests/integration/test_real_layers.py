"""The three real layers, built from the real locks and PyPI wheels, exactly as a user builds them."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from lambda_ml_layers.build.target_imports import lambda_sys_path
from lambda_ml_layers.checks.module_map import check_layer_modules
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.core.runtimes import LAMBDA_UNZIPPED_LIMIT, RUNTIMES
from tests.project_factory import REPO

pytestmark = pytest.mark.realwheels
PATHS = BuildPaths.of(REPO)
OUTPUT = PATHS.output_dir("python3.12", "x86_64")
MB = 1_000_000


def inv_build(*extra: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "build-layers", *extra], cwd=REPO, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report: dict[str, Any] = json.loads(PATHS.report("python3.12", "x86_64").read_text())
    return report


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return inv_build()


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {layer["name"]: layer for layer in report["layers"]}


def test_layers_fit_their_budgets_and_lambda(report: dict[str, Any]) -> None:
    layers = by_name(report)
    assert layers["core-data-science"]["unzipped_bytes"] <= 100 * MB
    assert layers["aws-utilities"]["unzipped_bytes"] <= 50 * MB
    assert layers["ml-libraries"]["unzipped_bytes"] <= layers["ml-libraries"]["budget_bytes"]
    assert sum(layer["unzipped_bytes"] for layer in layers.values()) < LAMBDA_UNZIPPED_LIMIT - 50 * MB
    assert all(layer["verified"] for layer in layers.values())
    assert report["failures"] == []


def test_the_aws_layer_was_verified_by_making_a_client_for_every_kept_service(report: dict[str, Any]) -> None:
    kept = load_project(REPO).layer("aws-utilities").aws_services or ()
    aws = by_name(report)["aws-utilities"]
    notes = next(step["notes"] for step in aws["steps"] if step["step"] == "verify")
    assert kept
    assert notes[0].endswith(f", {len(kept)} boto3 clients created")


def test_no_package_is_in_two_layers(report: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for layer in report["layers"]:
        for package in layer["packages"]:
            assert package not in seen, f"{package} in {seen.get(package)} and {layer['name']}"
            seen[package] = layer["name"]
    assert by_name(report)["ml-libraries"]["provided_by_base"]["numpy"] == "core-data-science"


def test_the_committed_module_map_matches_the_built_layers(report: dict[str, Any]) -> None:
    check_layer_modules(load_project(REPO))  # services/shared/layer_modules.json; `inv layer-modules` rewrites it


def test_zip_sizes_match_the_report(report: dict[str, Any]) -> None:
    for layer in report["layers"]:
        with zipfile.ZipFile(OUTPUT / f"{layer['name']}.zip") as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            assert sum(i.file_size for i in infos) == layer["unzipped_bytes"]
            assert all(i.filename.startswith("python/") for i in infos)


def test_the_layers_work_together_as_lambda_lays_them_out(report: dict[str, Any], tmp_path: Path) -> None:
    for name in ("core-data-science", "ml-libraries", "aws-utilities"):
        with zipfile.ZipFile(OUTPUT / f"{name}.zip") as archive:
            archive.extractall(tmp_path / "opt")
    script = """
import sys, json
sys.path[:0] = json.loads(sys.argv[1])
import pandas as pd, numpy as np, boto3, botocore.exceptions
from sklearn.ensemble import RandomForestClassifier
frame = pd.DataFrame({"t": pd.date_range("2026-03-28", periods=4, freq="D", tz="Europe/Berlin"), "x": [1, 2, 3, 4]})
assert frame["t"].dt.tz_convert("UTC").dt.hour.tolist() == [23, 23, 22, 22]  # DST change on 2026-03-29
model = RandomForestClassifier(n_estimators=5, random_state=0).fit(np.arange(20).reshape(10, 2), [0, 1] * 5)
assert len(model.predict([[1, 2]])) == 1
boto3.client("s3", region_name="us-east-1")
try:
    boto3.client("ec2", region_name="us-east-1")
except botocore.exceptions.UnknownServiceError:
    print("OK")
"""
    python = find_interpreter(RUNTIMES["python3.12"])
    paths = json.dumps(lambda_sys_path(tmp_path / "opt", RUNTIMES["python3.12"]))
    result = subprocess.run(
        [python, "-I", "-S", "-c", script, paths],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.strip() == "OK", result.stderr


def test_unchanged_inputs_rebuild_as_a_no_op(report: dict[str, Any]) -> None:
    again = inv_build()
    assert all(layer["cache_hit"] for layer in again["layers"])
    assert [layer["sha256"] for layer in again["layers"]] == [layer["sha256"] for layer in report["layers"]]


def test_two_clean_builds_give_byte_identical_zips(report: dict[str, Any]) -> None:
    rebuilt = inv_build("--force")
    assert not any(layer["cache_hit"] for layer in rebuilt["layers"])
    assert {layer["name"]: layer["sha256"] for layer in rebuilt["layers"]} == {
        layer["name"]: layer["sha256"] for layer in report["layers"]
    }
