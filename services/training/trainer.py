"""Train the fraud model on the sample, compare it with a trivial baseline, write the artifact.

Run by `inv train-model` inside the layer-lock python3.12 venv (never import it from the
tooling venv: it needs numpy 2.5):

    python services/training/trainer.py --out build/model [--stage dev | --bucket NAME]

Writes <out>/model.joblib (preprocessor + model), <out>/model.json (manifest: sha256,
library versions, metrics) and, given --stage or --bucket, uploads both to the model
bucket: models/<version>/model.joblib first, then models/current/model.json, so the
manifest never names an artifact that is not there yet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SERVICES = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(SERVICES / "data_validation"), str(SERVICES / "feature_engineering")]

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402
from data_validation import schema, validate  # noqa: E402
from data_validation.runtime import BadInput  # noqa: E402
from feature_engineering import features  # noqa: E402
from sklearn.dummy import DummyClassifier  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score  # noqa: E402
from trainer_io import (  # noqa: E402
    ERROR_PREFIX,
    INPUT_EXIT,
    SAMPLE_FIX,
    TrainingInputError,
    check_credentials,
    check_writable,
    read_data,
    upload_or_explain,
)

SEED = 7
TARGET = "is_fraud"
TEST_SHARE = 0.25  # the latest quarter of the days: the model is judged on its future
THRESHOLD = 0.5
REFUSED_EXIT = 3  # the model did not beat the baseline
SCHEMA = "services/data_validation/data_validation/schema.toml"


def load_training_frame(path: Path) -> pd.DataFrame:
    """The sample, through the same schema check as production batches; labels required."""
    try:
        result = validate.validate(read_data(path), schema.load_schema())
    except BadInput as exc:  # empty file, not a CSV table, missing columns, no rows
        raise TrainingInputError(
            f"training data {path}: {exc}. Fix: the columns are in {SCHEMA}; {SAMPLE_FIX}."
        ) from None
    if not result.passed:
        raise TrainingInputError(f"training data {path} fails the batch schema: {result.report.get('reason')}.")
    frame = result.valid
    if TARGET not in frame.columns:
        raise TrainingInputError(
            f"training data {path} lacks the {TARGET} column: training needs a label on every row."
        )
    if frame[TARGET].isna().any():
        raise TrainingInputError(f"training data {path}: every training row needs an {TARGET} label.")
    days, labels = frame["timestamp"].dt.floor("D").nunique(), {int(v) for v in frame[TARGET].unique()}
    if days < 4:
        raise TrainingInputError(
            f"training data {path} spans {days} day(s): training needs at least 4 (the last quarter tests)."
        )
    if labels != {0, 1}:
        raise TrainingInputError(
            f"training data {path} has only {TARGET} = {sorted(labels)}: training needs both 0 and 1."
        )
    return frame


def split_by_time(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    days = frame["timestamp"].dt.floor("D")
    cutoff = days.drop_duplicates().sort_values().iloc[int(days.nunique() * (1 - TEST_SHARE))]
    return frame[days < cutoff], frame[days >= cutoff]


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "roc_auc": round(float(roc_auc_score(y, p)), 4),
        "average_precision": round(float(average_precision_score(y, p)), 4),
        "log_loss": round(float(log_loss(y, p, labels=[0, 1])), 4),
        "brier": round(float(brier_score_loss(y, p)), 4),
    }


CALIBRATION_BINS = 10


def calibration(y: np.ndarray, p: np.ndarray, threshold: float = THRESHOLD) -> dict[str, float]:
    """How far the scores are from probabilities on the test days: the flag rate at the threshold
    next to the true positive rate (a model that flags twice the true rate floods reviewers),
    the mean score, and the expected calibration error over CALIBRATION_BINS equal-width bins
    (the rows-weighted gap between mean score and positive rate per bin)."""
    bins = np.minimum((p * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    gap = 0.0
    for b in np.unique(bins):
        inside = bins == b
        gap += abs(float(p[inside].mean()) - float(y[inside].mean())) * int(inside.sum()) / len(y)
    return {
        "positive_rate": round(float(y.mean()), 4),
        "flag_rate": round(float((p >= threshold).mean()), 4),
        "mean_score": round(float(p.mean()), 4),
        "expected_calibration_error": round(gap, 4),
    }


def train(frame: pd.DataFrame, max_iter: int = 200) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit on the earlier days, score the later ones; returns (bundle, metrics)."""
    # Features are computed over the whole frame (per-card history crosses the split), then
    # rows are split by day: the same view of history a production batch has.
    engineered = features.build_features(frame)
    train_rows, test_rows = split_by_time(engineered)
    columns = features.NUMERIC + features.CATEGORICAL
    preprocessor = features.make_preprocessor().fit(train_rows[columns])
    x_train = preprocessor.transform(train_rows[columns])
    x_test = preprocessor.transform(test_rows[columns])
    y_train = train_rows[TARGET].to_numpy(dtype=int)
    y_test = test_rows[TARGET].to_numpy(dtype=int)

    model = HistGradientBoostingClassifier(
        max_iter=max_iter,
        learning_rate=0.05,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        class_weight="balanced",
        random_state=SEED,
    ).fit(x_train, y_train)
    baseline = DummyClassifier(strategy="prior").fit(x_train, y_train)

    model_p = model.predict_proba(x_test)[:, 1]
    metrics = {
        "train_rows": len(train_rows),
        "test_rows": len(test_rows),
        "test_positive_rate": round(float(y_test.mean()), 4),
        "model": scores(y_test, model_p),
        "baseline_prior": scores(y_test, baseline.predict_proba(x_test)[:, 1]),
        "recall_at_threshold": round(float(((model_p >= THRESHOLD) & (y_test == 1)).sum() / max(1, y_test.sum())), 4),
        "calibration": calibration(y_test, model_p),
    }
    bundle = {
        "preprocessor": preprocessor,
        "model": model,
        "feature_names": list(preprocessor.get_feature_names_out()),
    }
    return bundle, metrics


def beats_baseline(metrics: dict[str, Any]) -> bool:
    model, base = metrics["model"], metrics["baseline_prior"]
    return model["roc_auc"] > base["roc_auc"] + 0.05 and model["average_precision"] > base["average_precision"]


def write_artifact(bundle: dict[str, Any], metrics: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write the three files beside each other under temporary names, then rename them into place,
    the manifest last: a failed write leaves the previous artifact whole."""
    try:
        return _write_artifact(bundle, metrics, out)
    except OSError as exc:
        raise TrainingInputError(
            f"writing the model to {out} failed ({exc.strerror}); the previous model there is unchanged. "
            f"Fix: free space or pass another --out."
        ) from None


def _write_artifact(bundle: dict[str, Any], metrics: dict[str, Any], out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".model-") as staging:
        manifest = _write_files(bundle, metrics, Path(staging))
        for name in ("model.joblib", "model.joblib.sha256", "model.json"):
            os.replace(Path(staging) / name, out / name)
    return manifest


def _write_files(bundle: dict[str, Any], metrics: dict[str, Any], out: Path) -> dict[str, Any]:
    artifact = out / "model.joblib"
    joblib.dump(bundle, artifact, compress=3)
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    version = sha[:12]
    manifest = {
        "model_version": version,
        "sha256": sha,
        "artifact_key": f"models/{version}/model.joblib",
        "feature_names": bundle["feature_names"],
        "threshold": THRESHOLD,
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "joblib": joblib.__version__,
        },
        "metrics": metrics,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "model.joblib.sha256").write_text(f"{sha}  model.joblib\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the model on the sample data.")
    parser.add_argument("--data", type=Path, default=SERVICES.parent / "data/sample/transactions.csv")
    parser.add_argument("--out", type=Path, default=SERVICES.parent / "build/model")
    parser.add_argument("--stage", help="upload to this stage's model bucket")
    parser.add_argument("--bucket", help="upload to this bucket (overrides the stage's name)")
    parser.add_argument("--manifest-key", default="models/current/model.json")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except TrainingInputError as exc:
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
        return INPUT_EXIT


def run(args: argparse.Namespace) -> int:
    frame = load_training_frame(args.data)
    check_writable(args.out)
    if args.stage or args.bucket:
        check_credentials(f"bucket {args.bucket}" if args.bucket else f"stage {args.stage}'s model bucket")
    bundle, metrics = train(frame)
    m, b = metrics["model"], metrics["baseline_prior"]
    print(
        f"trained on {metrics['train_rows']} rows, tested on the next {metrics['test_rows']} "
        f"(positive rate {metrics['test_positive_rate']:.1%})"
    )
    print(f"{'metric':<18}{'model':>9}{'baseline':>10}")
    for name in m:
        print(f"{name:<18}{m[name]:>9.4f}{b[name]:>10.4f}")
    print(f"recall at {THRESHOLD}: {metrics['recall_at_threshold']:.1%}")
    c = metrics["calibration"]
    print(
        f"calibration: flags {c['flag_rate']:.1%} at {THRESHOLD} (true rate {c['positive_rate']:.1%}), "
        f"mean score {c['mean_score']:.4f}, expected calibration error {c['expected_calibration_error']:.4f}"
    )
    if not beats_baseline(metrics):
        print("REFUSED: the model does not beat the prior-probability baseline; no artifact written.")
        return REFUSED_EXIT
    manifest = write_artifact(bundle, metrics, args.out)
    print(f"wrote {args.out / 'model.joblib'} (version {manifest['model_version']}, sha256 {manifest['sha256']})")
    print(f"trained with {json.dumps(manifest['versions'])}")
    if args.stage or args.bucket:
        bucket = upload_or_explain(args.out, manifest, args.stage, args.bucket, args.manifest_key)
        print(f"uploaded to s3://{bucket}/{manifest['artifact_key']} and s3://{bucket}/{args.manifest_key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
