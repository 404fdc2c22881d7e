"""A function started without one of its layers fails at init with one line naming it.

Each case imports the handler in a fresh interpreter in which one layer's module cannot be
imported (`sys.modules[name] = None` makes Python raise ModuleNotFoundError for it, as an
absent /opt/python would), and checks what Lambda would show: the exception's one line and
one JSON ERROR log line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
# Which layer provides each module: the one generated map (`inv layer-modules`), never a copy.
LAYER_OF_MODULE = json.loads((SERVICES / "shared" / "layer_modules.json").read_text())["modules"]

FUNCTION_NAMES = [
    ("data_validation", "DataValidation"),
    ("feature_engineering", "FeatureEngineering"),
    ("predictions", "Predictions"),
    ("merge", "Merge"),
]
# (function package, template name, module removed, layer that provides it); the functions'
# imports as wired in infra/template.yaml (DataValidation, Merge: core + aws; the others: all three).
IMPORTS = [
    ("data_validation", "DataValidation", "pandas"),
    ("data_validation", "DataValidation", "boto3"),
    ("feature_engineering", "FeatureEngineering", "pandas"),
    ("feature_engineering", "FeatureEngineering", "sklearn"),
    ("feature_engineering", "FeatureEngineering", "boto3"),
    ("predictions", "Predictions", "numpy"),
    ("predictions", "Predictions", "joblib"),
    ("predictions", "Predictions", "sklearn"),
    ("predictions", "Predictions", "boto3"),
    ("merge", "Merge", "numpy"),
    ("merge", "Merge", "pandas"),
    ("merge", "Merge", "boto3"),
    # runtime.py itself logs through Powertools: every function needs it, before any other import.
    *((package, function, "aws_lambda_powertools") for package, function in FUNCTION_NAMES),
]
CASES = [(package, function, module, LAYER_OF_MODULE[module]) for package, function, module in IMPORTS]


def import_handler(
    package: str, blocked: str | None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    block = f"sys.modules[{blocked!r}] = None; " if blocked else ""
    code = f"import sys; {block}sys.path.insert(0, {str(SERVICES / package)!r}); import {package}.handler"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120
    )


@pytest.mark.parametrize(("package", "function", "module", "layer"), CASES, ids=[f"{c[1]}-{c[2]}" for c in CASES])
def test_missing_layer_is_named_in_one_line(package: str, function: str, module: str, layer: str) -> None:
    result = import_handler(package, module)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"{package}.runtime.LayerMissingError: {function} needs layer {layer} for module '{module}', "
        f"but it is not importable: add !Ref {layer} to {function}'s Layers in infra/template.yaml."
    )
    # from None: no chained "During handling of the above exception" noise.
    assert "During handling" not in result.stderr
    (log,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (log["level"], log["layer"], log["module"]) == ("ERROR", layer, module)


@pytest.mark.parametrize("package", ["data_validation", "feature_engineering", "predictions", "merge"])
def test_handlers_import_cleanly_with_all_layers(package: str) -> None:
    result = import_handler(package, None)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_on_lambda_boto3_from_the_runtime_does_not_count_as_the_layer() -> None:
    # The python3.12 runtime ships its own boto3, so importing it proves nothing: on Lambda
    # (AWS_EXECUTION_ENV set) it must not come from the interpreter's own site-packages,
    # which is where this venv's is.
    result = import_handler("data_validation", None, {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"})
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "DataValidation needs layer AWSUtilitiesLayer for module 'boto3'" in last
    assert "was loaded from the runtime" in last
