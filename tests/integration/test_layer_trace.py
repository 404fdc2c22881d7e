"""`inv trace-layers` on the real built layers: the tracer inside a real sandbox run sees what the
function loads from its layers, and the committed manifests match a fresh trace (`--check`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambda_ml_layers.config.template import function_specs
from lambda_ml_layers.config.trace_manifest import read_trace
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.core.runtimes import RUNTIMES, python_lib_dir
from lambda_ml_layers.layer_trace.attribution import LoadRecord, attribute, index_layers, zip_files
from lambda_ml_layers.layer_trace.command import trace_layers
from lambda_ml_layers.local.sandbox import LambdaSandbox, smoke_event
from tests.integration.test_pipeline_sandbox import build_layers
from tests.project_factory import REPO

pytestmark = pytest.mark.emulator

RUNTIME = RUNTIMES["python3.12"]
LAYERS = BuildPaths.of(REPO).output_dir("python3.12", "x86_64")
OPENBLAS_PREFIX = "numpy.libs/libscipy_openblas"


@pytest.fixture(scope="module")
def built() -> None:
    build_layers()  # a no-op when the layers are up to date


def test_the_tracer_in_a_sandbox_run_records_modules_and_libraries_of_the_layers(built: None, tmp_path: Path) -> None:
    spec = next(s for s in function_specs(REPO / "infra" / "template.yaml") if s.name == "DataValidationFunction")
    zips = [LAYERS / f"{layer}.zip" for layer in spec.layers]
    records = tmp_path / "records"
    records.mkdir()
    with LambdaSandbox(spec, zips, find_interpreter(RUNTIME), RUNTIME, trace_to=records) as sandbox:
        invocation = sandbox.invoke(smoke_event())
        assert invocation.ok and invocation.result["status"] == "smoke", invocation.logs[-2000:]
    [path] = sorted(records.glob("trace-*.json"))  # one process, which exited on its own when stopped
    record = LoadRecord.read(path)

    index = index_layers((layer, zip_files(LAYERS / f"{layer}.zip")) for layer in spec.layers)
    usage = attribute(record, index, [python_lib_dir(RUNTIME), "python"])
    core = usage["core-data-science"]
    assert "pandas.io.parsers" in core.modules
    assert "numpy._core._multiarray_umath" in core.modules  # an extension module, from the process map
    assert any(lib.startswith(OPENBLAS_PREFIX) for lib in core.libraries), core.libraries
    assert "boto3" in usage["aws-utilities"].modules
    assert not any(m.startswith("data_validation") for used in usage.values() for m in used.modules)  # task/


def test_the_committed_manifests_match_a_fresh_trace(built: None) -> None:
    outcome = trace_layers(REPO, check=True, say=lambda line: None)
    assert outcome.changed == []
    for layer, trace in outcome.traces.items():
        assert read_trace(REPO / "layers" / layer / "trace.txt") == trace
    core = outcome.traces["core-data-science"]
    assert "pandas.io.parsers" in core.modules
    assert any(lib.startswith(OPENBLAS_PREFIX) and "libc.so.6" in needs for lib, needs in core.libraries.items())
    assert "sklearn/utils/_repr_html/estimator.css" in outcome.traces["ml-libraries"].files
    assert any(f.startswith("botocore/data/s3/") for f in outcome.traces["aws-utilities"].files)
