"""The check that a function's own requirements do not re-declare a layer's packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambda_ml_layers.build.function_deps import check_function_requirements, redeclared_packages
from lambda_ml_layers.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"core-data-science": ["numpy", "pandas", "python-dateutil"], "ml-libraries": ["scikit-learn", "joblib"]}


def test_clean_requirements_pass() -> None:
    assert redeclared_packages("Predictions", "# nothing\nrequests>=2\n", LAYERS) == []


def test_redeclared_package_names_function_package_and_layer() -> None:
    (problem,) = redeclared_packages("Predictions", "Scikit_Learn==1.5  # pinned\n", LAYERS)
    assert "function Predictions re-declares 'Scikit_Learn==1.5', which layer ml-libraries provides" in problem


def test_lock_pulling_a_layer_package_is_refused() -> None:
    lock = (
        "numpy==2.5.5 \\\n    --hash=sha256:abc\n    # via some-lib\n"
        "some-lib==1.0 \\\n    --hash=sha256:def\n    # via -r requirements.in\n"
    )
    (problem,) = redeclared_packages("DataValidation", "some-lib\n", LAYERS, lock=lock)
    assert "would bundle numpy==2.5.5 (via some-lib), which layer core-data-science provides" in problem


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_text("pandas\njoblib\n")
    layer_lock = tmp_path / "layer.txt"
    layer_lock.write_text("pandas==3.1.1 \\\n    --hash=sha256:aa\njoblib==1.6.0 \\\n    --hash=sha256:bb\n")
    with pytest.raises(ConfigError) as error:
        check_function_requirements("FeatureEngineering", tmp_path, {"core-data-science": layer_lock})
    assert "'pandas'" in str(error.value) and "'joblib'" in str(error.value)


@pytest.mark.parametrize(
    ("package", "layers"),
    [
        ("data_validation", ["core-data-science", "aws-utilities"]),
        ("feature_engineering", ["core-data-science", "ml-libraries", "aws-utilities"]),
        ("predictions", ["core-data-science", "ml-libraries", "aws-utilities"]),
    ],
)
def test_the_pipeline_functions_pass(package: str, layers: list[str]) -> None:
    locks = {layer: ROOT / "layers" / layer / "requirements.txt" for layer in layers}
    check_function_requirements(package, ROOT / "services" / package, locks)
