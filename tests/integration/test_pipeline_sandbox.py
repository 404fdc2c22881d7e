"""The pipeline's functions as Lambda runs them: built layers, the Lambda-like sandbox, a local S3.

Each function of infra/template.yaml is laid out by lambda_ml_layers.sandbox (task/ with its
package, opt/ with its built layer zips in the template's order, read-only; python3.12 with
no host site-packages) and invoked with real events against a moto server this module
starts (http://localhost:PORT). The model is trained by the project's own training code
(lambda_ml_layers.training, in its python3.12 venv) and uploaded to that server. Nothing of
the project is patched: the handlers talk to moto over HTTP with boto3 from the layer.

A sandbox keeps its process between invocations (a warm container). Where a test needs a
new container, `new_container` ends the process and empties the sandbox's /tmp.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lambda_ml_layers.config.template import FunctionSpec, function_specs, load_template, template_layers
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.layer_tree import tree_size
from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.core.runtimes import RUNTIMES
from lambda_ml_layers.local.moto_server import MotoServer, moto_server
from lambda_ml_layers.local.pipeline_stage import SAMPLE as SAMPLE_PATH
from lambda_ml_layers.local.pipeline_stage import (
    create_card_history_table,
    function_environment,
    new_bucket,
    s3_created_event,
    upload_trained_model,
)
from lambda_ml_layers.local.sandbox import Invocation, LambdaSandbox
from tests.project_factory import REPO

pytestmark = pytest.mark.emulator

TEMPLATE = REPO / "infra" / "template.yaml"
RUNTIME = RUNTIMES["python3.12"]
LAYERS = BuildPaths.of(REPO).output_dir("python3.12", "x86_64")
REPORT = BuildPaths.of(REPO).report("python3.12", "x86_64")
SAMPLE = REPO / SAMPLE_PATH
VALIDATION, FEATURES, PREDICTIONS = "DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction"
BUILD_WAIT_SECONDS = 1800  # another `inv build-layers` holding build/ (a developer's, another session's)


# --- fixtures: layers, interpreter, moto server, model ----------------------------------


def build_layers() -> dict[str, Any]:
    """`inv build-layers` as a user runs it: a no-op when up to date, and it refreshes its report
    (the function totals count the handler code as it is now). Waits while another build holds build/."""
    deadline = time.monotonic() + BUILD_WAIT_SECONDS
    while True:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", "build-layers"], cwd=REPO, capture_output=True, text=True, timeout=1800
        )
        if "Another build is running" not in result.stdout + result.stderr or time.monotonic() > deadline:
            break
        time.sleep(10)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report: dict[str, Any] = json.loads(REPORT.read_text())
    return report


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return build_layers()


@pytest.fixture(scope="module")
def specs(report: dict[str, Any]) -> dict[str, FunctionSpec]:
    return {spec.name: spec for spec in function_specs(TEMPLATE)}


@pytest.fixture(scope="module")
def python() -> str:
    return find_interpreter(RUNTIME)


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with moto_server() as running:
        yield running


@pytest.fixture(scope="module")
def s3(server: MotoServer) -> Any:
    client = server.client("s3")
    assert client.meta.endpoint_url.startswith("http://localhost:")
    return client


@dataclass(frozen=True)
class Model:
    bucket: str
    manifest: dict[str, Any]

    @property
    def artifact_key(self) -> str:
        return str(self.manifest["artifact_key"])


@pytest.fixture(scope="module")
def model(server: MotoServer, s3: Any, tmp_path_factory: pytest.TempPathFactory) -> Model:
    """`inv train-model --bucket B` through the engine: trained in the layers' python3.12 venv on
    the sample, with the layer locks' scikit-learn, and uploaded to the moto server."""
    bucket = new_bucket(s3, "models")
    manifest = upload_trained_model(server, REPO, bucket, tmp_path_factory.mktemp("model"))
    assert s3.get_object(Bucket=bucket, Key="models/current/model.json")["Body"].read()
    return Model(bucket, manifest)


def layer_zips(spec: FunctionSpec, without: str | None = None) -> list[Path]:
    return [LAYERS / f"{name}.zip" for name in spec.layers if name != without]


@pytest.fixture(scope="module")
def card_history_table(server: MotoServer) -> str:
    """The template's CardHistoryTable (its own key schema and index), created in moto."""
    return create_card_history_table(server, TEMPLATE)


@pytest.fixture(scope="module")
def sandboxes(
    report: dict[str, Any],
    specs: dict[str, FunctionSpec],
    python: str,
    server: MotoServer,
    model: Model,
    card_history_table: str,
) -> Iterator[dict[str, LambdaSandbox]]:
    """One container per function, laid out once; the template's variables plus what deploy fills in."""
    environment = function_environment(server, model.bucket, card_history_table)
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(LambdaSandbox(spec, layer_zips(spec), python, RUNTIME, environment))
            for name, spec in specs.items()
        }


def new_container(sandbox: LambdaSandbox) -> None:
    """The next invocation starts a new execution environment: a new process and an empty /tmp."""
    sandbox.stop()
    shutil.rmtree(sandbox.tmp)
    sandbox.tmp.mkdir()


# --- helpers ---------------------------------------------------------------------------


def log_records(invocation: Invocation) -> list[dict[str, Any]]:
    """The function's JSON log lines (Powertools-style logs and EMF metrics)."""
    return [json.loads(line) for line in invocation.logs.splitlines() if line.startswith("{")]


def messages(invocation: Invocation) -> list[str]:
    return [str(r["message"]) for r in log_records(invocation) if "message" in r]


def errors_logged(invocation: Invocation) -> list[dict[str, Any]]:
    return [r for r in log_records(invocation) if r.get("level") == "ERROR"]


def assert_structured_error(invocation: Invocation, error_type: str, fragment: str) -> str:
    """A structured error result and exactly one ERROR log line saying the same; nothing else logged
    but JSON (no traceback)."""
    assert invocation.ok, invocation.error
    result = invocation.result
    assert result["status"] == "error" and result["error"]["type"] == error_type, result
    message = str(result["error"]["message"])
    assert fragment in message, message
    errors = errors_logged(invocation)
    assert len(errors) == 1 and errors[0]["message"] == message and errors[0]["error_type"] == error_type
    assert all(line.startswith("{") for line in invocation.logs.splitlines() if line.strip()), invocation.logs
    return message


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def keys(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def read(s3: Any, bucket: str, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def invoke_ok(sandbox: LambdaSandbox, event: Any) -> Invocation:
    invocation = sandbox.invoke(event)
    assert invocation.ok, f"{invocation.error}\n{invocation.logs[-3000:]}"
    assert invocation.result.get("status") in ("passed", "ok"), f"{invocation.result}\n{invocation.logs[-3000:]}"
    assert not errors_logged(invocation), invocation.logs[-3000:]
    return invocation


@contextmanager
def model_objects_restored(s3: Any, model: Model) -> Iterator[None]:
    """Let a test damage the model bucket; put the manifest and artifact back afterwards."""
    saved = {key: read(s3, model.bucket, key) for key in (model.artifact_key, "models/current/model.json")}
    try:
        yield
    finally:
        for key, body in saved.items():
            s3.put_object(Bucket=model.bucket, Key=key, Body=body)


# --- the build report against what the sandbox lays out -----------------------------------


def test_report_totals_equal_what_the_sandbox_extracted_byte_for_byte(
    report: dict[str, Any], sandboxes: dict[str, LambdaSandbox]
) -> None:
    functions = {entry["name"]: entry for entry in report["functions"]}
    assert sorted(functions) == sorted(sandboxes)
    for name, sandbox in sandboxes.items():
        entry = functions[name]
        assert entry["code_bytes"] + entry["layer_bytes"] == entry["total_bytes"], name
        assert (entry["code_bytes"], entry["layer_bytes"]) == (tree_size(sandbox.task), tree_size(sandbox.opt)), name
        assert entry["total_bytes"] == sandbox.extracted_bytes, name
        assert entry["total_bytes"] <= entry["limit_bytes"], name


# --- the good path ----------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineRun:
    bucket: str
    batch_id: str
    validation: Invocation
    features: Invocation
    predictions: Invocation


@pytest.fixture(scope="module")
def pipeline(s3: Any, sandboxes: dict[str, LambdaSandbox]) -> PipelineRun:
    """The sample batch uploaded to incoming/, then Validate -> BuildFeatures -> Predict, each
    function given the previous one's result as the state machine passes it."""
    bucket = new_bucket(s3, "data")
    batch_id = "2024-05-01/sample"
    s3.put_object(Bucket=bucket, Key=f"incoming/{batch_id}.csv", Body=SAMPLE.read_bytes())
    validation = invoke_ok(sandboxes[VALIDATION], s3_created_event(bucket, f"incoming/{batch_id}.csv"))
    features = invoke_ok(sandboxes[FEATURES], validation.result)
    predictions = invoke_ok(sandboxes[PREDICTIONS], features.result)
    return PipelineRun(bucket, batch_id, validation, features, predictions)


def test_the_sample_batch_runs_through_the_pipeline_to_predictions_in_s3(
    s3: Any, pipeline: PipelineRun, model: Model
) -> None:
    validated, built, scored = (pipeline.validation.result, pipeline.features.result, pipeline.predictions.result)
    assert all(i.cold for i in (pipeline.validation, pipeline.features, pipeline.predictions))
    sample_rows = SAMPLE.read_text().count("\n") - 1
    assert validated["status"] == "passed" and validated["rows"] == sample_rows
    assert validated["valid_rows"] + validated["invalid_rows"] == sample_rows
    assert built["rows"] == validated["valid_rows"] and built["model_sha256"] == model.manifest["sha256"]
    assert scored["rows"] == validated["valid_rows"] and scored["model_version"] == model.manifest["model_version"]

    batch = pipeline.batch_id
    assert keys(s3, pipeline.bucket) >= {
        f"incoming/{batch}.csv",
        f"reports/{batch}/validation.json",
        f"validated/{batch}/valid_rows.csv",
        f"features/{batch}/features.csv",
        f"predictions/{batch}/predictions.csv",
        f"predictions/{batch}/summary.json",
    }
    summary = json.loads(read(s3, pipeline.bucket, scored["summary_key"]))
    assert summary["rows"] == scored["rows"] and summary["flagged"] == scored["flagged"]
    assert summary["trained_with"] == model.manifest["versions"]
    dist = summary["score_distribution"]
    assert 0 <= dist["min"] <= dist["p50"] <= dist["p99"] <= dist["max"] <= 1
    out = csv_rows(read(s3, pipeline.bucket, f"predictions/{batch}/predictions.csv"))
    assert len(out) == summary["rows"] and sum(int(r["flagged"]) for r in out) == summary["flagged"]
    assert len({r["transaction_id"] for r in out}) == len(out)

    # The scores mean something: the sample's labelled frauds rank far above the rest.
    labels = {r["transaction_id"]: r["is_fraud"] for r in csv_rows(SAMPLE.read_bytes())}
    scores: dict[str, list[float]] = {"0": [], "1": []}
    for row in out:
        scores[labels[row["transaction_id"]]].append(float(row["fraud_score"]))
    assert scores["1"] and scores["0"]
    assert statistics.mean(scores["1"]) > 5 * statistics.mean(scores["0"])

    # Powertools-style logs: each function's cold start is logged and counted once.
    for invocation in (pipeline.validation, pipeline.features, pipeline.predictions):
        records = log_records(invocation)
        assert any(r.get("message") == "done" and r.get("cold_start") is True for r in records)
        assert sum(1 for r in records if r.get("ColdStart") == 1) == 1


def test_a_warm_predictions_invocation_reuses_the_model_cache(
    s3: Any, sandboxes: dict[str, LambdaSandbox], pipeline: PipelineRun, model: Model
) -> None:
    sandbox = sandboxes[PREDICTIONS]
    event = pipeline.features.result
    cached = sandbox.tmp / "models" / f"{model.manifest['sha256']}.joblib"
    new_container(sandbox)

    cold = invoke_ok(sandbox, event)
    assert cold.cold and messages(cold).count("model downloaded") == 1
    assert cached.is_file()

    warm = invoke_ok(sandbox, event)
    assert not warm.cold and warm.init_seconds is None
    assert "model downloaded" not in messages(warm)
    assert warm.result == cold.result

    # The runtime restarts in the same environment (same /tmp) while the artifact is gone from
    # S3: the model comes from the sha256-checked file in /tmp, not from memory and not from S3.
    with model_objects_restored(s3, model):
        s3.delete_object(Bucket=model.bucket, Key=model.artifact_key)
        sandbox.stop()
        restarted = invoke_ok(sandbox, event)
    assert restarted.cold
    assert "model downloaded" not in messages(restarted)
    assert restarted.result == cold.result


# --- bad input --------------------------------------------------------------------------


def sample_without_column(name: str) -> bytes:
    lines = SAMPLE.read_text().splitlines()
    index = lines[0].split(",").index(name)
    kept = [",".join(f for i, f in enumerate(line.split(",")) if i != index) for line in lines]
    return ("\n".join(kept) + "\n").encode()


def sample_with_ragged_row() -> bytes:
    lines = SAMPLE.read_text().splitlines()
    lines[2] += ",surplus,field"
    return ("\n".join(lines) + "\n").encode()


BAD_FILES = {
    "malformed_csv": (sample_with_ragged_row, "malformed CSV: line 3 has 10 fields, the header has 8"),
    "missing_column": (
        lambda: sample_without_column("merchant_category"),
        "lacks required column(s) merchant_category",
    ),
    "empty_file": (lambda: b"", "empty file"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_batch_file_gives_a_structured_error_and_only_a_rejection_report(
    s3: Any, sandboxes: dict[str, LambdaSandbox], case: str
) -> None:
    make_body, fragment = BAD_FILES[case]
    bucket = new_bucket(s3, "data")
    key = f"incoming/2024-05-02/{case}.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=make_body())

    invocation = sandboxes[VALIDATION].invoke(s3_created_event(bucket, key))

    assert_structured_error(invocation, "BadInput", fragment)
    # Where the state machine's BatchRejected cause points; no quarantine, no validated rows.
    report = f"reports/2024-05-02/{case}/validation.json"
    assert keys(s3, bucket) == {key, report}
    assert fragment in json.loads(read(s3, bucket, report))["reason"]


WRONG_EVENTS = [
    (VALIDATION, {"hello": "world"}, "not an S3 object reference"),
    (VALIDATION, {"Records": []}, "exactly one S3 record"),
    (FEATURES, {"bucket": "some-bucket"}, "lacks string field(s) batch_id"),
    (FEATURES, {"status": "failed", "bucket": "some-bucket", "batch_id": "b1"}, "did not pass validation"),
    (PREDICTIONS, ["not", "an", "object"], "event must be a JSON object"),
    (PREDICTIONS, {"bucket": "some-bucket", "batch_id": "../../etc"}, "no empty, '.' or '..' part"),
]


@pytest.mark.parametrize(("function", "event", "fragment"), WRONG_EVENTS)
def test_a_wrong_event_shape_gives_a_structured_error(
    sandboxes: dict[str, LambdaSandbox], function: str, event: Any, fragment: str
) -> None:
    assert_structured_error(sandboxes[function].invoke(event), "BadEvent", fragment)


def staged_batch(s3: Any, pipeline: PipelineRun) -> tuple[str, dict[str, Any], dict[str, Any], set[str]]:
    """A new data bucket holding a copy of the good run's inputs to FeatureEngineering and
    Predictions, and the events for them: (bucket, features event, predictions event, keys)."""
    bucket = new_bucket(s3, "data")
    source = pipeline.batch_id
    batch_id = "2024-05-03/staged"
    for stage, name in (("validated", "valid_rows.csv"), ("features", "features.csv")):
        s3.put_object(
            Bucket=bucket, Key=f"{stage}/{batch_id}/{name}", Body=read(s3, pipeline.bucket, f"{stage}/{source}/{name}")
        )
    features_event = {**pipeline.validation.result, "bucket": bucket, "batch_id": batch_id}
    predictions_event = {"status": "ok", "bucket": bucket, "batch_id": batch_id}
    return bucket, features_event, predictions_event, keys(s3, bucket)


MODEL_DAMAGE = {
    "artifact_missing": ("model artifact s3://", "could not be read"),
    "manifest_missing": ("does not exist", "inv train-model --stage"),
    "artifact_tampered": ("was modified or replaced; refusing to load it", "inv train-model --stage"),
}


@pytest.mark.parametrize("function", [FEATURES, PREDICTIONS])
@pytest.mark.parametrize("damage", sorted(MODEL_DAMAGE))
def test_a_missing_or_tampered_model_gives_a_structured_error_and_writes_nothing(
    s3: Any, sandboxes: dict[str, LambdaSandbox], pipeline: PipelineRun, model: Model, function: str, damage: str
) -> None:
    bucket, features_event, predictions_event, staged = staged_batch(s3, pipeline)
    sandbox = sandboxes[function]
    new_container(sandbox)  # no model in memory or in /tmp yet
    with model_objects_restored(s3, model):
        if damage == "artifact_missing":
            s3.delete_object(Bucket=model.bucket, Key=model.artifact_key)
        elif damage == "manifest_missing":
            s3.delete_object(Bucket=model.bucket, Key="models/current/model.json")
        else:
            body = read(s3, model.bucket, model.artifact_key)
            s3.put_object(Bucket=model.bucket, Key=model.artifact_key, Body=body[:-1] + bytes([body[-1] ^ 1]))
        invocation = sandbox.invoke(features_event if function == FEATURES else predictions_event)
    try:
        message = assert_structured_error(invocation, "ArtifactError", MODEL_DAMAGE[damage][0])
        assert MODEL_DAMAGE[damage][1] in message
        assert keys(s3, bucket) == staged  # no features, no predictions, no summary
        models = sandbox.tmp / "models"
        assert not models.exists() or list(models.iterdir()) == []  # nothing unverified kept in /tmp
    finally:
        new_container(sandbox)  # the next test's container has not seen the damaged model


# --- a missing layer ----------------------------------------------------------------------

LAYER_IDS = {layer.layer_name: logical_id for logical_id, layer in template_layers(load_template(TEMPLATE)).items()}
FUNCTION_LAYERS = [(spec.name, layer) for spec in function_specs(TEMPLATE) for layer in spec.layers]
_LAYER_MISSING = re.compile(
    r"(\w+) needs layer (\w+) for module '([\w.]+)', but it is not importable: "
    r"add !Ref (\w+) to \1's Layers in infra/template\.yaml\."
)


def top_level_modules(layer_zip: Path) -> set[str]:
    """What a layer zip makes importable at the top level (python/<name> or python/<name>.pyc)."""
    with zipfile.ZipFile(layer_zip) as archive:
        tops = {name.split("/")[1] for name in archive.namelist() if name.count("/") >= 2 or name.endswith(".pyc")}
    return {top.split(".")[0] for top in tops if not top.endswith((".dist-info", ".libs"))}


@pytest.mark.parametrize(
    ("function", "layer"), FUNCTION_LAYERS, ids=[f"{f}-without-{lay}" for f, lay in FUNCTION_LAYERS]
)
def test_a_function_without_one_of_its_layers_fails_at_init_naming_the_layer_and_module(
    specs: dict[str, FunctionSpec], python: str, server: MotoServer, function: str, layer: str
) -> None:
    spec = specs[function]
    with LambdaSandbox(spec, layer_zips(spec, without=layer), python, RUNTIME, server.client_env()) as sandbox:
        invocation = sandbox.invoke({"bucket": "some-bucket", "key": "incoming/x.csv", "batch_id": "x"})

    assert invocation.cold and invocation.error is not None and invocation.result is None
    assert invocation.error["errorType"] == "Runtime.ImportModuleError"
    # One line names the layer by its template name and the module; nothing chained before it.
    line = invocation.error["errorMessage"].split(": ", 1)[1]
    match = _LAYER_MISSING.fullmatch(line)
    assert match, line
    assert match[2] == match[4] == LAYER_IDS[layer], line
    assert match[3] in top_level_modules(LAYERS / f"{layer}.zip"), line
    # awslambdaric logs the init error last, as "[ERROR] <errorType>: <errorMessage>" then "\r" and the
    # traceback's heading (Lambda keeps the lines of one error in one log event that way).
    (logged,) = [x for x in invocation.logs.splitlines() if x.startswith("[ERROR] Runtime.ImportModuleError: ")]
    assert line in logged
    assert "During handling of the above exception" not in invocation.logs
    errors = errors_logged(invocation)
    assert len(errors) == 1 and errors[0]["message"] == line
    assert (errors[0]["error_type"], errors[0]["layer"], errors[0]["module"]) == ("LayerMissing", match[2], match[3])
