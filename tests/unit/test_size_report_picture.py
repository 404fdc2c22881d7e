"""`inv size-report`'s picture, as data: what is big inside each package (from the built zips) and
each function's layers stacked against Lambda's limit, read back from the page that embeds it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.core.runtimes import LAMBDA_UNZIPPED_LIMIT
from lambda_ml_layers.size_report.command import SizeReportRequest, size_report
from lambda_ml_layers.size_report.contents import function_stacks, kind_of, layer_contents
from lambda_ml_layers.size_report.treemap import embedded_data
from tests.unit.test_size_report import function, layer, report

MB = 1_000_000
# What an ml layer's zip holds, in the shape the build writes it (python/...).
ML_ZIP = {
    "python/scipy.libs/libscipy_openblas-5f890258.so": 25 * MB,
    "python/scipy.libs/libgfortran-040039e1.so.5.0.0": 3 * MB,
    "python/scipy/special/_ufuncs.cpython-312-x86_64-linux-gnu.so": 8 * MB,
    "python/scipy/special/_basic.pyc": 1 * MB,
    "python/scipy/stats/_sobol_direction_numbers.npz": 2 * MB,
    "python/scipy/__init__.pyc": 100_000,
    "python/scipy-1.16.0.dist-info/METADATA": 150_000,
    "python/sklearn/tree/_tree.cpython-312-x86_64-linux-gnu.so": 4 * MB,
    "python/sklearn/datasets/data/iris.csv": 10_000,  # under 0.2% of the layer: drawn with the small ones
    "python/threadpoolctl.pyc": 200_000,
}


def parts_of(groups: list[dict[str, object]], name: str) -> dict[str, tuple[str, int]]:
    (group,) = [g for g in groups if g["name"] == name]
    return {p["name"]: (p["kind"], p["bytes"]) for p in group["parts"]}  # type: ignore[attr-defined, index]


def test_a_package_splits_into_bundled_libraries_subpackages_and_data_files() -> None:
    groups = layer_contents(ML_ZIP.items())
    assert [g["name"] for g in groups][:2] == ["scipy", "sklearn"]  # largest first; scipy.libs goes with scipy
    scipy = parts_of(groups, "scipy")
    assert scipy["scipy.libs/libscipy_openblas-5f890258.so"] == ("library", 25 * MB)
    assert scipy["scipy.libs/libgfortran-040039e1.so.5.0.0"] == ("library", 3 * MB)
    assert scipy["scipy/special: extension modules"] == ("extension", 8 * MB)
    assert scipy["scipy/special"] == ("code", 1 * MB)
    assert scipy["scipy/stats: data files"] == ("data", 2 * MB)
    assert parts_of(groups, "sklearn")["sklearn: smaller parts"] == ("mixed", 10_000)
    assert parts_of(groups, "(package metadata)") == {"*.dist-info": ("metadata", 150_000)}
    assert parts_of(groups, "threadpoolctl") == {"threadpoolctl.pyc": ("code", 200_000)}
    assert sum(g["bytes"] for g in groups) == sum(ML_ZIP.values())  # nothing lost, nothing counted twice


def test_kinds_of_files() -> None:
    assert kind_of("pyarrow/libarrow.so.1900") == "library"  # a library inside the package folder
    assert kind_of("xgboost/lib/libxgboost.so") == "library"
    assert kind_of("lightgbm/lib/lib_lightgbm.so") == "library"
    assert kind_of("numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so") == "extension"
    assert kind_of("pyarrow/lib.abi3.so") == "extension"
    assert kind_of("sklearn/datasets/descr/iris.rst") == "data"
    assert kind_of("pandas/core/frame.pyc") == "code"


def test_each_function_bar_stacks_its_layers_in_template_order() -> None:
    functions = [function("Fn", 150 * MB), function("Unknown", 10 * MB)]
    stacks = function_stacks(functions, {"Fn": ["core", "ml"]}, {"core": 50 * MB, "ml": 100 * MB})
    assert stacks[0]["layers"] == [{"name": "core", "bytes": 50 * MB}, {"name": "ml", "bytes": 100 * MB}]
    assert stacks[0]["limit_bytes"] == LAMBDA_UNZIPPED_LIMIT and stacks[0]["code_bytes"] == 20_000
    # Layers the template does not name for it: one segment, still the right total.
    assert stacks[1]["layers"] == [{"name": "layers", "bytes": 10 * MB}]


def test_the_command_embeds_the_zips_contents_and_the_templates_stacks(tmp_path: Path) -> None:
    paths = BuildPaths.of(tmp_path)
    current = report(
        layer("core", {"numpy": ("2.2.0", 40 * MB)}),
        layer("ml", {"scipy": ("1.16.0", 39 * MB), "scikit-learn": ("1.6.0", 4 * MB)}),
        functions=[function("PredictFunction", 83 * MB)],
    )
    paths.default_report.parent.mkdir(parents=True)
    paths.default_report.write_text(json.dumps(current))
    out = paths.output_dir("python3.12", "x86_64")
    out.mkdir(parents=True)
    with zipfile.ZipFile(out / "ml.zip", "w") as archive:
        for name, size in ML_ZIP.items():
            archive.writestr(name, b"\0" * size)
    (out / "core.zip").write_text("not a zip")  # left out of the nested picture, not a crash
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "template.yaml").write_text(
        "Resources:\n"
        "  CoreLayer: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: ../x/core.zip}}\n"
        "  MlLayer: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: ../x/ml.zip}}\n"
        "  PredictFunction:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: ../services/p/, Handler: p.handler.h, Runtime: python3.12,"
        " Layers: [!Ref CoreLayer, !Ref MlLayer]}\n"
    )
    page = size_report(SizeReportRequest(root=tmp_path)).picture.read_text()
    data = embedded_data(page)
    assert data["layers"]["core"] == []
    scipy = parts_of(data["layers"]["ml"], "scipy")
    assert scipy["scipy.libs/libscipy_openblas-5f890258.so"] == ("library", 25 * MB)
    (bar,) = data["functions"]
    assert bar["name"] == "PredictFunction"
    assert bar["layers"] == [{"name": "core", "bytes": 40 * MB}, {"name": "ml", "bytes": 43 * MB}]
    # The page draws what it embeds: a part per bundled library, a segment per layer.
    assert 'data-kind="library"' in page and 'data-layer="ml"' in page and "<script" not in page
