from pathlib import Path

from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.config.strip_rules import plan_strip
from tests.project_factory import REPO, tiny_project

LAYER = load_project(REPO).layer("core-data-science")


def removed(paths: list[str]) -> dict[str, str]:
    plan = plan_strip(paths, LAYER.strip_rules, LAYER.protect)
    return {path: rule for rule, matched in plan.items() for path in matched}


def test_test_suites_go_but_modules_code_imports_stay() -> None:
    result = removed(
        [
            "pandas/tests/frame/test_api.py",
            "numpy/_core/tests/test_umath.py",
            "numpy/_core/tests/_natype.py",
            "numpy/testing/__init__.py",
            "sklearn/utils/_testing.py",
        ]
    )
    assert result == {"pandas/tests/frame/test_api.py": "tests", "numpy/_core/tests/test_umath.py": "tests"}


def test_botocore_docs_is_runtime_code_and_stays() -> None:
    assert removed(["botocore/docs/__init__.py", "boto3/docs/method.py"]) == {}


def test_scikit_learn_dataset_descriptions_stay() -> None:
    assert removed(["sklearn/datasets/descr/iris.rst"]) == {}


def test_licences_are_never_removed_even_inside_removed_folders() -> None:
    assert removed(["numpy-2.5.5.dist-info/LICENSE.txt", "pkg/tests/LICENSE", "scipy/doc/COPYING"]) == {}


def test_dist_info_keeps_what_importlib_metadata_reads() -> None:
    result = removed(
        [
            "numpy-2.5.5.dist-info/METADATA",
            "numpy-2.5.5.dist-info/entry_points.txt",
            "numpy-2.5.5.dist-info/RECORD",
            "numpy-2.5.5.dist-info/INSTALLER",
        ]
    )
    assert result == {
        "numpy-2.5.5.dist-info/RECORD": "dist-info-extras",
        "numpy-2.5.5.dist-info/INSTALLER": "dist-info-extras",
    }


def test_sources_headers_stubs_and_caches_go() -> None:
    result = removed(
        [
            "numpy/_core/include/numpy/ndarrayobject.h",
            "scipy/linalg/cython_blas.pxd",
            "pandas/_libs/lib.pyi",
            "pandas/__pycache__/x.cpython-311.pyc",
            "bin/f2py",
            "pandas/core/frame.py",
            "numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so",
        ]
    )
    assert result == {
        "numpy/_core/include/numpy/ndarrayobject.h": "c-sources-and-headers",
        "scipy/linalg/cython_blas.pxd": "c-sources-and-headers",
        "pandas/_libs/lib.pyi": "type-stubs",
        "pandas/__pycache__/x.cpython-311.pyc": "caches",
        "bin/f2py": "console-scripts",
    }


def test_a_layer_strip_rule_matching_nothing_warns_naming_the_rule_and_its_file(tmp_path: Path) -> None:
    rules = (
        '[[strip.rules]]\nname = "typo"\nwhy = "meant tests"\ndirectories = ["tset"]\n'
        '[[strip.rules]]\nname = "stubs-again"\nwhy = "fine"\nfiles = ["core.pyi"]\n'
    )
    project = tiny_project(tmp_path, "budget_mb = 10\n" + rules)
    report = build_layers(BuildRequest(root=project.root, find_links=project.wheels_dir))
    [layer] = report["layers"]
    layer_toml = project.layer_dir("tinylayer") / "layer.toml"
    [warning] = [w for w in layer["warnings"] if "strip rule" in w]
    assert warning.startswith(f"strip rule 'typo' ({layer_toml}) matched no file of the layer")
    # The inherited rules that find nothing here ("caches", "console-scripts", ...) stay quiet, and so
    # does a rule whose files an earlier rule (type-stubs) took: its globs matched.
    [strip] = [s for s in layer["steps"] if s["step"] == "strip"]
    assert strip["warnings"] == [warning]
