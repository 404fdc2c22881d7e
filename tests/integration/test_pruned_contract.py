"""ml-libraries' contract (docs/layer-contract.md#contract), tested on the built layer: every area
[prune] keeps imports and its estimators fit; built whole (the default, [prune] off), what the
contract leaves out imports too, so a pickled GaussianNB loads."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from lambda_ml_layers.build.target_imports import lambda_sys_path
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.layer_zip import extract
from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.core.runtimes import RUNTIMES
from tests.integration.test_pipeline_sandbox import build_layers
from tests.project_factory import REPO
from tests.unit.test_model_artifacts import FIXTURES

RUNTIME = RUNTIMES["python3.12"]
LAYERS = BuildPaths.of(REPO).output_dir("python3.12", "x86_64")

# Runs in the target interpreter with only the layers on sys.path.
CONTRACT_SCRIPT = """
import importlib, sys
sys.path[:0] = PATHS
import numpy as np
for area in KEEP:
    importlib.import_module(area)
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (AdaBoostClassifier, BaggingClassifier, ExtraTreesClassifier, GradientBoostingClassifier,
    HistGradientBoostingClassifier, IsolationForest, RandomForestClassifier, StackingClassifier, VotingClassifier)
from sklearn.impute import KNNImputer, MissingIndicator, SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge, SGDClassifier
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier
rng = np.random.default_rng(0)
x = rng.normal(size=(120, 4)); y = (x[:, 0] + x[:, 1] > 0).astype(int)
x_train, x_test, y_train, y_test = train_test_split(x, y, random_state=0)
lr = LogisticRegression()
classifiers = [HistGradientBoostingClassifier(max_iter=10), RandomForestClassifier(n_estimators=5),
    ExtraTreesClassifier(n_estimators=5), GradientBoostingClassifier(n_estimators=5),
    AdaBoostClassifier(n_estimators=5), BaggingClassifier(n_estimators=3), DecisionTreeClassifier(),
    VotingClassifier([("lr", lr), ("dt", DecisionTreeClassifier())]),
    StackingClassifier([("dt", DecisionTreeClassifier())], final_estimator=clone(lr)), SGDClassifier(), clone(lr)]
for model in classifiers:
    model.fit(x_train, y_train).predict(x_test)
for model in (LinearRegression(), Ridge(), Lasso(alpha=0.01), ElasticNet(alpha=0.01)):
    model.fit(x_train, x_train[:, 0])
IsolationForest(n_estimators=5).fit(x)
holes = x.copy(); holes[::7, 1] = np.nan
for imputer in (SimpleImputer(), KNNImputer(), MissingIndicator()):
    imputer.fit_transform(holes)
scaled = make_pipeline(MinMaxScaler(), StandardScaler(), LogisticRegression()).fit(x_train, y_train)
p = scaled.predict_proba(x_test)[:, 1]
roc_auc_score(y_test, p); average_precision_score(y_test, p); log_loss(y_test, p)
cross_val_score(LogisticRegression(), x, y, cv=3)
GridSearchCV(LogisticRegression(), {"C": [0.1, 1]}, cv=3).fit(x, y)
codes = np.array([["a"], ["b"], ["a"]])
ColumnTransformer([("oh", OneHotEncoder(), [0]), ("ord", OrdinalEncoder(), [0])]).fit_transform(codes)
from scipy import linalg, optimize, sparse, special, stats
assert abs(stats.norm.cdf(0) - 0.5) < 1e-12 and optimize.minimize_scalar(lambda v: (v - 2) ** 2).x.round(3) == 2
linalg.cho_factor(np.eye(3)); sparse.csr_matrix(np.eye(3)).sum(); special.expit(0.0)
# Kept code that imports more only when called (the holes upstream_tests found): COBYLA and
# COBYQA (scipy._external), KBinsDiscretizer's k-means (sklearn.cluster, scipy.cluster for ward),
# pairwise_kernels (sklearn.gaussian_process.kernels).
for method in ("COBYLA", "COBYQA"):
    assert abs(optimize.minimize(lambda v: ((v - 2) ** 2).sum(), [0.0], method=method).x[0] - 2) < 1e-3
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.preprocessing import KBinsDiscretizer
KBinsDiscretizer(n_bins=3, strategy="kmeans").fit_transform(x)
AgglomerativeClustering(n_clusters=2, linkage="ward").fit(x)
pairwise_kernels(x[:5], metric="rbf")
gone = []
for module in GONE:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError:
        gone.append(module)
print("GONE", sorted(gone))
import pickle
from sklearn.naive_bayes import GaussianNB
model = pickle.loads(pickle.dumps(GaussianNB().fit(x_train, y_train)))
assert model.predict(x_test).shape == y_test.shape
import joblib  # the pickle guard's fixture: a real joblib file of a fitted GaussianNB, from the whole layers
bundle = joblib.load(GAUSSIAN_NB)
assert type(bundle["model"]).__name__ == "GaussianNB" and bundle["model"].predict(x_test[:, :3]).shape == (30,)
"""
GONE = ["scipy.signal", "scipy.odr", "scipy.fftpack", "sklearn.mixture", "sklearn.calibration", "sklearn.naive_bayes"]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return build_layers()


def test_every_contract_area_imports_and_its_estimators_fit_and_the_rest_is_there(report: dict[str, Any]) -> None:
    layer = load_project(REPO).layer("ml-libraries")
    assert layer.prune is None and layer.prune_option is not None  # whole by default, pruning an option
    [built] = [entry for entry in report["layers"] if entry["name"] == "ml-libraries"]
    assert built["unzipped_bytes"] <= layer.budget_bytes
    with tempfile.TemporaryDirectory(prefix="contract-") as temp:
        opt = Path(temp) / "opt"
        for name in ("core-data-science", "ml-libraries"):
            extract(LAYERS / f"{name}.zip", opt)
        script = (
            f"PATHS = {lambda_sys_path(opt, RUNTIME)!r}\nKEEP = {list(layer.prune_option.keep)!r}\nGONE = {GONE!r}\n"
            f"GAUSSIAN_NB = {str(FIXTURES / 'gaussian_nb.joblib')!r}\n"
        )
        result = subprocess.run(
            [find_interpreter(RUNTIME), "-I", "-S", "-c", script + CONTRACT_SCRIPT],
            cwd=temp,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GONE []" in result.stdout
