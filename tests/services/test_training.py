"""Training: the model beats the baseline, the artifact records what it needs, and the
`inv train-model` engine prepares its python3.12 env from the layer locks."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
import trainer
import trainer_io

from lambda_ml_layers.config.stages import stage_names
from lambda_ml_layers.core.errors import ConfigError, InterpreterMissing
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.local.training import TrainRequest, merged_layer_requirements, train_model

ROOT = Path(__file__).resolve().parents[2]


def test_model_beats_the_prior_baseline(trained_model: tuple[Path, dict[str, Any]]) -> None:
    _, manifest = trained_model
    metrics = manifest["metrics"]
    assert metrics["baseline_prior"]["roc_auc"] == 0.5
    assert metrics["model"]["roc_auc"] > 0.9
    assert metrics["model"]["average_precision"] > 5 * metrics["baseline_prior"]["average_precision"]
    assert metrics["model"]["log_loss"] < metrics["baseline_prior"]["log_loss"]
    assert trainer.beats_baseline(metrics)
    assert not trainer.beats_baseline({**metrics, "model": metrics["baseline_prior"]})


def test_calibration_compares_flag_rate_and_scores_with_the_true_rate(
    trained_model: tuple[Path, dict[str, Any]],
) -> None:
    import numpy as np
    import trainer

    y = np.array([0] * 8 + [1] * 2)
    perfect = trainer.calibration(y, np.array([0.2] * 10), threshold=0.5)
    assert perfect == {"positive_rate": 0.2, "flag_rate": 0.0, "mean_score": 0.2, "expected_calibration_error": 0.0}
    # Scores inflated as class weighting does: flags 3 of 10 where 2 are positive, 0.25 too high on average.
    inflated = trainer.calibration(y, np.array([0.3] * 7 + [0.6] + [0.9] * 2), threshold=0.5)
    assert (inflated["flag_rate"], inflated["mean_score"]) == (0.3, 0.45)
    assert inflated["expected_calibration_error"] == pytest.approx(0.21 + 0.06 + 0.02)  # per bin: 7, 1 and 2 rows
    _, manifest = trained_model
    reported = manifest["metrics"]["calibration"]
    assert set(reported) == set(perfect) and reported["positive_rate"] == manifest["metrics"]["test_positive_rate"]


def test_artifact_records_its_sha256_and_library_versions(trained_model: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = trained_model
    digest = hashlib.sha256((out / "model.joblib").read_bytes()).hexdigest()
    assert manifest["sha256"] == digest and manifest["model_version"] == digest[:12]
    assert (out / "model.joblib.sha256").read_text() == f"{digest}  model.joblib\n"
    assert json.loads((out / "model.json").read_text())["sha256"] == digest
    assert manifest["versions"] == {
        "python": manifest["versions"]["python"],
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "joblib": joblib.__version__,
    }
    bundle = joblib.load(out / "model.joblib")
    assert list(bundle["preprocessor"].get_feature_names_out()) == manifest["feature_names"]


def test_training_is_reproducible(trained_model: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    _, manifest = trained_model
    bundle, metrics = trainer.train(trainer.load_training_frame(trainer_sample()), max_iter=60)
    assert trainer.write_artifact(bundle, metrics, tmp_path)["sha256"] == manifest["sha256"]


def trainer_sample() -> Path:
    return ROOT / "data" / "sample" / "transactions.csv"


def test_committed_sample_matches_its_generator() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(ROOT / "data" / "generate_transactions.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_the_threshold_flags_as_many_rows_as_there_are_frauds() -> None:
    y = np.array([0, 0, 1, 0, 1, 0, 0, 0, 0, 0])
    p = np.array([0.01, 0.2, 0.9, 0.3, 0.25, 0.02, 0.03, 0.04, 0.05, 0.06])
    threshold = trainer.break_even_threshold(y, p)
    assert threshold == 0.3 and int((p >= threshold).sum()) == int(y.sum()) == 2
    with pytest.raises(ValueError, match="no positive rows"):
        trainer.break_even_threshold(np.zeros(3, dtype=int), np.array([0.1, 0.2, 0.3]))


def test_days_split_in_time_order_into_fit_threshold_and_test() -> None:
    days = pd.date_range("2024-03-01", periods=61, freq="D", tz="UTC")
    frame = pd.DataFrame({"timestamp": days.repeat(2)})
    fit, threshold, test = trainer.split_by_time(frame)
    assert len(fit) + len(threshold) + len(test) == len(frame)
    assert fit["timestamp"].max() < threshold["timestamp"].min()
    assert threshold["timestamp"].max() < test["timestamp"].min()
    assert (fit["timestamp"].nunique(), threshold["timestamp"].nunique(), test["timestamp"].nunique()) == (45, 8, 8)


def test_the_manifest_records_the_chosen_threshold_and_the_expected_flag_rate(
    trained_model: tuple[Path, dict[str, Any]],
) -> None:
    _, manifest = trained_model
    metrics = manifest["metrics"]
    assert manifest["threshold"] == metrics["threshold"] != 0.5  # chosen on the threshold days, not fixed
    assert manifest["expected_flag_rate"] == metrics["calibration"]["flag_rate"] > 0
    assert metrics["train_rows"] > metrics["threshold_rows"] > 0 and metrics["test_rows"] > 0
    # Judged on days that chose nothing: its flag rate is measured, not forced to the true rate.
    assert 0.5 <= manifest["expected_flag_rate"] / metrics["test_positive_rate"] <= 2


def test_the_same_inputs_reuse_the_cached_model_and_other_inputs_do_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--data", str(trainer_sample()), "--cache", str(tmp_path / "cache"), "--max-iter", "60"]
    assert trainer.main([*common, "--out", str(tmp_path / "first")]) == 0
    assert "trained in" in capsys.readouterr().out
    assert trainer.main([*common, "--out", str(tmp_path / "second")]) == 0
    second = capsys.readouterr().out
    assert "reusing the model trained at" in second and "trained in" not in second
    for name in ("model.joblib", "model.json"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()
    assert "threshold" in second and "calibration" in second  # the metrics are printed either way

    changed = tmp_path / "changed.csv"
    changed.write_text(trainer_sample().read_text().replace(",17.46,", ",17.47,", 1))
    key = trainer.inputs_sha256(trainer_sample(), 60)
    assert trainer.inputs_sha256(changed, 60) != key != trainer.inputs_sha256(trainer_sample(), 200)
    assert trainer.cached_model(tmp_path / "cache" / key[:16], key) is not None
    (tmp_path / "cache" / key[:16] / "model.joblib").write_bytes(b"truncated")
    assert trainer.cached_model(tmp_path / "cache" / key[:16], key) is None  # a damaged copy is not reused


def test_model_bucket_name_is_the_templates() -> None:
    template = (ROOT / "infra" / "template.yaml").read_text()
    assert "BucketName: !Sub lambda-ml-layers-${Stage}-models-${AWS::AccountId}" in template
    assert trainer_io.model_bucket_name("dev", "123456789012") == "lambda-ml-layers-dev-models-123456789012"


def test_merged_layer_requirements_pin_each_package_once_with_hashes() -> None:
    text = merged_layer_requirements(ROOT)
    names = [line.split("==")[0] for line in text.splitlines()]
    assert len(names) == len(set(names))
    assert {"numpy", "pandas", "scikit-learn", "joblib", "boto3"} <= set(names)
    assert all(re.search(r"--hash=sha256:[0-9a-f]{64}", line) for line in text.splitlines())
    assert f"scikit-learn=={sklearn.__version__} " in text  # this venv was installed from the same locks


def test_stages_come_from_samconfig() -> None:
    assert stage_names(ROOT) == ["local", "dev", "staging", "prod"]


def test_unknown_stage_is_refused_before_any_work() -> None:
    expected = r"Unknown stage 'qa': .*infra/samconfig\.toml defines local, dev, staging, prod\."
    with pytest.raises(ConfigError, match=expected):
        train_model(TrainRequest(root=ROOT, stage="qa"))


def test_local_stage_needs_an_endpoint() -> None:
    with pytest.raises(ConfigError, match="set AWS_ENDPOINT_URL"):
        train_model(TrainRequest(root=ROOT, stage="local", env={}))


def test_missing_python312_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no interpreters at all
    find_interpreter.cache_clear()
    try:
        with pytest.raises(InterpreterMissing, match=r"needs a python3\.12 interpreter on PATH.*model training"):
            train_model(TrainRequest(root=ROOT))
    finally:
        find_interpreter.cache_clear()


def test_a_python_that_is_not_a_lambda_runtime_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"not 'python3\.99'"):
        train_model(TrainRequest(root=ROOT, python="python3.99"))


# --- `inv train-model` failures: one line naming the file, column or folder, and the fix ------


def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to find, and no wait for one
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores file modes; sysfs refuses it too)."""
    import os

    if os.geteuid() == 0:
        return Path("/sys/lambda-ml-layers-test-model")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    return locked / "model"


def sample_columns(tmp_path: Path, keep: int) -> Path:
    lines = trainer_sample().read_text().splitlines()
    path = tmp_path / f"first-{keep}-columns.csv"
    path.write_text("\n".join(",".join(line.split(",")[:keep]) for line in lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", r"training data .*/absent\.csv does not exist\. Fix: pass --data"),
        ("empty", r"training data .*/empty\.csv: the batch is an empty file\. Fix: the columns are in"),
        ("columns", r"lacks required column\(s\) amount, merchant_category, channel, distance_from_home_km"),
        ("label", r"training data .*/first-7-columns\.csv lacks the is_fraud column"),
        ("read-only out", r"--out .*model is not writable \(.+\)\. Fix: pass --out a folder you can write to"),
        ("no credentials", r"no AWS credentials to upload to bucket some-bucket\. Fix: `aws configure`"),
    ],
)
def test_a_training_failure_is_one_line_naming_the_cause_and_the_fix(
    case: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out, extra = trainer_sample(), tmp_path / "out", []
    if case == "missing":
        data = tmp_path / "absent.csv"
    elif case == "empty":
        data = tmp_path / "empty.csv"
        data.write_text("")
    elif case == "columns":
        data = sample_columns(tmp_path, 3)
    elif case == "label":
        data = sample_columns(tmp_path, 7)
    elif case == "read-only out":
        out = read_only_folder(tmp_path)
    else:
        no_aws_credentials(monkeypatch, tmp_path)
        extra = ["--bucket", "some-bucket"]
    code = trainer.main(["--data", str(data), "--out", str(out), *extra])
    captured = capsys.readouterr()
    assert code == trainer.INPUT_EXIT == 4
    [line] = captured.err.strip().splitlines()
    assert line.startswith(trainer.ERROR_PREFIX)
    assert re.search(expected, line), line
    assert "Traceback" not in captured.err
    assert not (out / "model.joblib").exists()  # stopped before training: nothing written
