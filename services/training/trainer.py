"""Train the fraud model, compare it with a trivial baseline, choose its threshold, write the artifact.

Run by `inv train-model` inside the layer-lock python3.12 venv (never import it from the
tooling venv: it needs numpy 2.5):

    python services/training/trainer.py --data FILE.csv --out build/model [--stage dev | --bucket NAME]

The days are split in time order: the model is fitted on the first three quarters, its
threshold is chosen on the next eighth and it is judged (metrics, calibration, flag rate) on
the last eighth, never seen before. Writes <out>/model.joblib (preprocessor + model),
<out>/model.json (manifest: sha256, library versions, threshold, expected flag rate, metrics)
and, given --stage or --bucket, uploads both to the model bucket: models/<version>/model.joblib
first, then models/current/model.json, so the manifest never names an artifact that is not
there yet.

Training at the realistic size takes minutes, so a finished model is kept in --cache under the
sha256 of everything that decides it (the data, this code and the feature code, the library
versions): the same inputs again reuse it instead of training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
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
HELD_OUT_SHARE = 0.25  # the latest quarter of the days: the threshold and the judgement come from the future
MIN_DAYS = 8  # six to fit on, one to choose the threshold on, one to judge on
MAX_ITER = 200
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
    if days < MIN_DAYS:
        raise TrainingInputError(
            f"training data {path} spans {days} day(s): training needs at least {MIN_DAYS} (the last quarter "
            f"chooses the threshold and tests)."
        )
    if labels != {0, 1}:
        raise TrainingInputError(
            f"training data {path} has only {TARGET} = {sorted(labels)}: training needs both 0 and 1."
        )
    return frame


def split_by_time(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(fit, threshold, test) rows by day, in time order: the held-out quarter's earlier half
    chooses the threshold, its later half judges the model."""
    days = frame["timestamp"].dt.floor("D")
    ordered = days.drop_duplicates().sort_values().reset_index(drop=True)
    held_out = int(len(ordered) * (1 - HELD_OUT_SHARE))
    judged = held_out + max(1, (len(ordered) - held_out) // 2)
    first_held, first_judged = ordered.iloc[held_out], ordered.iloc[judged]
    return frame[days < first_held], frame[(days >= first_held) & (days < first_judged)], frame[days >= first_judged]


def break_even_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The score at which as many rows are flagged as there are frauds (precision = recall there).

    Why this rule: reviewers get about one alert per true fraud, so a batch's flag rate is a
    direct reading of its fraud rate and a flag rate far from the training rate means the data
    or the model moved (the FlagRate alarm watches it). A fixed 0.5 on a model trained with
    class weights flagged five times the true rate of a 1M-row batch (issue 21)."""
    positives = int(y.sum())
    if positives == 0:
        raise ValueError("no positive rows to set a threshold on")
    return float(np.sort(p)[::-1][positives - 1])


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "roc_auc": round(float(roc_auc_score(y, p)), 4),
        "average_precision": round(float(average_precision_score(y, p)), 4),
        "log_loss": round(float(log_loss(y, p, labels=[0, 1])), 4),
        "brier": round(float(brier_score_loss(y, p)), 4),
    }


CALIBRATION_BINS = 10


def calibration(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
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


def train(frame: pd.DataFrame, max_iter: int = MAX_ITER) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit on the earliest days, choose the threshold on the next, score the latest; returns (bundle, metrics)."""
    # Features are computed over the whole frame (per-card history crosses the split), then
    # rows are split by day: the same view of history a production batch has.
    engineered = features.build_features(frame)
    train_rows, threshold_rows, test_rows = split_by_time(engineered)
    columns = features.NUMERIC + features.CATEGORICAL
    preprocessor = features.make_preprocessor().fit(train_rows[columns])

    def xy(rows: pd.DataFrame) -> tuple[Any, np.ndarray]:
        return preprocessor.transform(rows[columns]), rows[TARGET].to_numpy(dtype=int)

    (x_train, y_train), (x_threshold, y_threshold), (x_test, y_test) = map(xy, (train_rows, threshold_rows, test_rows))
    if y_train.sum() == 0 or y_threshold.sum() == 0:
        part = "fit" if y_train.sum() == 0 else "threshold"
        raise TrainingInputError(
            f"the training data's {part} days hold no {TARGET} = 1 row: the days are split in time order "
            f"(first 3/4 fit, then 1/8 threshold, 1/8 test) and each needs frauds. Fix: more days or cards."
        )
    # No class weights: the scores stay probabilities (calibration is reported), and the
    # threshold, not the weighting, decides how many rows are flagged.
    model = HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0, random_state=SEED
    ).fit(x_train, y_train)
    baseline = DummyClassifier(strategy="prior").fit(x_train, y_train)
    threshold = round(break_even_threshold(y_threshold, model.predict_proba(x_threshold)[:, 1]), 6)

    model_p = model.predict_proba(x_test)[:, 1]
    flagged = model_p >= threshold
    metrics = {
        "train_rows": len(train_rows),
        "threshold_rows": len(threshold_rows),
        "test_rows": len(test_rows),
        "test_positive_rate": round(float(y_test.mean()), 4),
        "threshold": threshold,
        "model": scores(y_test, model_p),
        "baseline_prior": scores(y_test, baseline.predict_proba(x_test)[:, 1]),
        "recall_at_threshold": round(float((flagged & (y_test == 1)).sum() / max(1, y_test.sum())), 4),
        "precision_at_threshold": round(float((flagged & (y_test == 1)).sum() / max(1, flagged.sum())), 4),
        "calibration": calibration(y_test, model_p, threshold),
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


ARTIFACT_FILES = ("model.joblib", "model.joblib.sha256", "model.json")  # the manifest last


def write_artifact(
    bundle: dict[str, Any], metrics: dict[str, Any], out: Path, inputs_sha256: str | None = None
) -> dict[str, Any]:
    """Write the three files beside each other under temporary names, then rename them into place,
    the manifest last: a failed write leaves the previous artifact whole."""
    manifest: dict[str, Any] = {}
    _publish(out, lambda staging: manifest.update(_write_files(bundle, metrics, staging, inputs_sha256)))
    return manifest


def copy_artifact(source: Path, out: Path) -> None:
    """The artifact in `source` into `out`, as write_artifact would put it there."""
    if source.resolve() != out.resolve():
        _publish(out, lambda staging: [shutil.copyfile(source / n, staging / n) for n in ARTIFACT_FILES])


def _publish(out: Path, fill: Callable[[Path], object]) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out, prefix=".model-") as staging:
            fill(Path(staging))
            for name in ARTIFACT_FILES:
                os.replace(Path(staging) / name, out / name)
    except OSError as exc:
        raise TrainingInputError(
            f"writing the model to {out} failed ({exc.strerror}); the previous model there is unchanged. "
            f"Fix: free space or pass another --out."
        ) from None


def inputs_sha256(data: Path, max_iter: int = MAX_ITER) -> str:
    """Everything that decides the model: the data's bytes, the training, validation and feature
    code, the library versions and the boosting rounds. The same digest, the same model."""
    digest = hashlib.sha256(f"{max_iter} {platform.python_version()} {sklearn.__version__} ".encode())
    digest.update(f"{np.__version__} {pd.__version__} {joblib.__version__}\n".encode())
    code = [Path(__file__).parent, SERVICES / "data_validation/data_validation", SERVICES / "feature_engineering"]
    for path in sorted(p for folder in code for p in folder.rglob("*") if p.suffix in {".py", ".toml"}):
        digest.update(f"{path.relative_to(SERVICES)}\n".encode() + path.read_bytes())
    with data.open("rb") as stream:
        digest.update(hashlib.file_digest(stream, "sha256").digest())
    return digest.hexdigest()


def cached_model(cache: Path, key: str) -> dict[str, Any] | None:
    """The manifest of a complete artifact trained on these inputs, if the cache has one."""
    try:
        manifest: dict[str, Any] = json.loads((cache / "model.json").read_text())
        whole = hashlib.sha256((cache / "model.joblib").read_bytes()).hexdigest() == manifest.get("sha256")
    except (OSError, ValueError):
        return None
    return manifest if whole and manifest.get("inputs_sha256") == key else None


def _write_files(
    bundle: dict[str, Any], metrics: dict[str, Any], out: Path, inputs_sha256: str | None
) -> dict[str, Any]:
    artifact = out / "model.joblib"
    joblib.dump(bundle, artifact, compress=3)
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    version = sha[:12]
    manifest = {
        "model_version": version,
        "sha256": sha,
        "artifact_key": f"models/{version}/model.joblib",
        "feature_names": bundle["feature_names"],
        "threshold": metrics["threshold"],
        # The share of rows a batch like the held-out days gets flagged: the FlagRate alarm's centre.
        "expected_flag_rate": metrics["calibration"]["flag_rate"],
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "joblib": joblib.__version__,
        },
        "metrics": metrics,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs_sha256": inputs_sha256,
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
    parser.add_argument("--max-iter", type=int, default=MAX_ITER, help=f"boosting rounds (default {MAX_ITER})")
    parser.add_argument(
        "--cache",
        type=Path,
        default=SERVICES.parent / "build/model-cache",
        help="where finished models are kept by the sha256 of their inputs; 'none' always trains",
    )
    args = parser.parse_args(argv)
    try:
        return run(args)
    except TrainingInputError as exc:
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
        return INPUT_EXIT


def run(args: argparse.Namespace) -> int:
    key = inputs_sha256(args.data, args.max_iter) if args.data.is_file() else ""
    cache = None if str(args.cache) == "none" or not key else args.cache / key[:16]
    reused = cached_model(cache, key) if cache else None
    if reused is None:
        frame = load_training_frame(args.data)
    check_writable(args.out)
    if args.stage or args.bucket:
        check_credentials(f"bucket {args.bucket}" if args.bucket else f"stage {args.stage}'s model bucket")
    if reused is not None and cache is not None:
        print(f"reusing the model trained at {reused['trained_at']} on the same inputs ({cache}): no training")
        copy_artifact(cache, args.out)
        print_metrics(reused["metrics"])
        manifest = reused
    else:
        started = time.perf_counter()
        bundle, metrics = train(frame, args.max_iter)
        print(f"trained in {time.perf_counter() - started:.0f} s")
        print_metrics(metrics)
        if not beats_baseline(metrics):
            print("REFUSED: the model does not beat the prior-probability baseline; no artifact written.")
            return REFUSED_EXIT
        manifest = write_artifact(bundle, metrics, args.out, key)
        if cache is not None:
            copy_artifact(args.out, cache)
    print(f"wrote {args.out / 'model.joblib'} (version {manifest['model_version']}, sha256 {manifest['sha256']})")
    print(f"trained with {json.dumps(manifest['versions'])}")
    if args.stage or args.bucket:
        bucket = upload_or_explain(args.out, manifest, args.stage, args.bucket, args.manifest_key)
        print(f"uploaded to s3://{bucket}/{manifest['artifact_key']} and s3://{bucket}/{args.manifest_key}")
    return 0


def print_metrics(metrics: dict[str, Any]) -> None:
    m, b = metrics["model"], metrics["baseline_prior"]
    print(
        f"trained on {metrics['train_rows']} rows, threshold chosen on the next {metrics['threshold_rows']}, "
        f"tested on the last {metrics['test_rows']} (positive rate {metrics['test_positive_rate']:.1%})"
    )
    print(f"{'metric':<18}{'model':>9}{'baseline':>10}")
    for name in m:
        print(f"{name:<18}{m[name]:>9.4f}{b[name]:>10.4f}")
    threshold = metrics["threshold"]
    print(
        f"at threshold {threshold:.4f}: recall {metrics['recall_at_threshold']:.1%}, "
        f"precision {metrics['precision_at_threshold']:.1%}"
    )
    c = metrics["calibration"]
    print(
        f"calibration: flags {c['flag_rate']:.1%} at {threshold:.4f} (true rate {c['positive_rate']:.1%}), "
        f"mean score {c['mean_score']:.4f}, expected calibration error {c['expected_calibration_error']:.4f}"
    )


if __name__ == "__main__":
    sys.exit(main())
