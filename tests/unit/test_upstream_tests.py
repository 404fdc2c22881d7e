"""nox -s upstream_tests: selection, overlay, the pytest run in a sourceless tree, the comparison."""

import base64
import hashlib
import json
import os
import py_compile
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.checks.upstream_tests.compare import SuiteComparison, blame, compare_suite, unused_expectations
from lambda_ml_layers.checks.upstream_tests.opt_mount import at_opt, can_mount_opt
from lambda_ml_layers.checks.upstream_tests.overlay import is_test_file, overlay_tests
from lambda_ml_layers.checks.upstream_tests.pytest_run import NodeOutcome, SuiteRun, run_suite
from lambda_ml_layers.checks.upstream_tests.report import report_data, report_markdown, write_report
from lambda_ml_layers.checks.upstream_tests.run import (
    EMULATED_ENVIRONMENT,
    failure_lines,
    has_layers_built,
    run_upstream_tests,
)
from lambda_ml_layers.checks.upstream_tests.selection import expected_reason, pytest_args
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.config.upstream_tests import Suite
from lambda_ml_layers.core.errors import ConfigError, InstallError, LayerTestFailed, NotVerified
from lambda_ml_layers.core.layer_tree import Distribution
from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.core.toolchains import timing
from tests.project_factory import REPO, tiny_project

SUITE = Suite("pkg", ("pkg",), "not slow", 120, ("pkg/tests/test_core.py",), ("pkg/tests/test_core.py::test_net",))


def test_the_repository_declares_suites_with_ci_subsets() -> None:
    project = load_project(REPO)
    for name in ("core-data-science", "ml-libraries"):
        suites = project.layer(name).upstream_tests.suites
        assert suites and all(s.fast and s.budget_s > 0 for s in suites)


def test_pytest_args_whole_and_fast() -> None:
    whole = pytest_args(SUITE, "/t/python", fast=False)
    assert whole[-1] == "/t/python/pkg" and whole[whole.index("-m") : whole.index("-m") + 2] == ["-m", "not slow"]
    assert whole[whole.index("--deselect") + 1] == "pkg/tests/test_core.py::test_net"
    assert pytest_args(SUITE, "/t/python", fast=True)[-1] == "/t/python/pkg/tests/test_core.py"
    assert "-n" not in whole and pytest_args(SUITE, "/t/python", False, workers=2)[6:8] == ["-n", "2"]


def test_expected_failures_match_exact_ids_and_prefixes() -> None:
    expected = {"a/tests/test_x.py::TestDoc": "checks docstrings", "a/tests/test_y.py": "whole file"}
    assert expected_reason("a/tests/test_x.py::TestDoc::test_one[1]", expected) == "checks docstrings"
    assert expected_reason("a/tests/test_x.py::TestDocs::test_one", expected) is None  # not a prefix at ::
    assert expected_reason("a/tests/test_y.py::test_z", expected) == "whole file"
    assert expected_reason("a/tests/test_z.py::t", expected) is None


@pytest.mark.parametrize(
    ("rel", "is_test"),
    [
        ("numpy/_core/tests/test_a.py", True),
        ("scipy/conftest.py", True),
        ("sklearn/utils/_testing.py", False),
        ("numpy-2.0.dist-info/tests/x", False),
        ("pkg/tests/__pycache__/x.pyc", False),
    ],
)
def test_only_test_folders_and_conftest_are_laid_back(rel: str, is_test: bool) -> None:
    assert is_test_file(rel) is is_test


def _site_with_record(site: Path, files: dict[str, str]) -> Distribution:
    record = []
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(text)}")
    (site / "pkg-1.0.dist-info").mkdir(exist_ok=True)
    (site / "pkg-1.0.dist-info" / "RECORD").write_text("\n".join(record) + "\npkg-1.0.dist-info/RECORD,,\n")
    return Distribution("pkg", "1.0", "pkg-1.0.dist-info", ("pkg",), tuple(files))


def test_overlay_copies_test_files_checked_against_record(tmp_path: Path) -> None:
    dist = _site_with_record(
        tmp_path / "ref",
        {"pkg/__init__.py": "", "pkg/tests/test_a.py": "def test(): pass\n", "pkg/conftest.py": "\n"},
    )
    layer = tmp_path / "layer"
    assert overlay_tests(tmp_path / "ref", layer, [dist]) == 2
    assert (layer / "pkg/tests/test_a.py").exists() and not (layer / "pkg/__init__.py").exists()
    (tmp_path / "ref/pkg/tests/test_a.py").write_text("def test(): assert False\n")  # not the wheel's file
    with pytest.raises(InstallError, match=r"test_a\.py does not match the sha256 in pkg-1\.0\.dist-info/RECORD"):
        overlay_tests(tmp_path / "ref", tmp_path / "layer2", [dist])


def _sourceless_tree(site: Path) -> None:
    """pkg shipped as bytecode only (like the layers), with its tests laid back as source."""
    (site / "pkg" / "tests").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("")
    (site / "pkg" / "core.py").write_text("def double(x):\n    return 2 * x\n")
    for module in ("__init__", "core"):
        source = site / "pkg" / f"{module}.py"
        py_compile.compile(
            str(source), cfile=str(source) + "c", invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
        source.unlink()
    (site / "pkg" / "tests" / "__init__.py").write_text("")
    (site / "pkg" / "tests" / "test_broken.py").write_text("import a_build_tool_that_is_not_installed\n")
    (site / "pkg" / "tests" / "test_core.py").write_text(
        "import inspect\n"
        "from ..core import double  # a relative import: only works if pytest sees pkg as the package root\n\n"
        "def test_double():\n    assert double(2) == 4\n\n"
        "def test_needs_source():\n    assert inspect.getsource(double)\n\n"
        "def test_net():\n    raise RuntimeError('deselected')\n"
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_suite_runs_in_a_sourceless_tree_with_the_right_package_names(tmp_path: Path, workers: int) -> None:
    site = tmp_path / "opt" / "python"
    _sourceless_tree(site)
    run = run_suite(sys.executable, SUITE, [str(site)], site, tmp_path, False, "stripped", workers=workers)
    assert run.results["pkg/tests/test_core.py::test_double"].outcome == "passed", run.output_tail
    failed = run.results["pkg/tests/test_core.py::test_needs_source"]
    assert failed.outcome == "failed" and failed.error.startswith("OSError: could not get source code")
    assert "pkg/tests/test_core.py::test_net" not in run.results  # deselected
    broken = run.results["pkg/tests/test_broken.py"]  # recorded, and the other modules still ran
    assert broken.outcome == "error" and "a_build_tool_that_is_not_installed" in broken.error
    records = [json.loads(line)["node"] for line in (tmp_path / "pkg-stripped-results.jsonl").read_text().splitlines()]
    assert records.count("pkg/tests/test_core.py::test_double") == 1  # xdist: the controller alone records


def test_a_suite_over_its_budget_is_stopped_and_reported(tmp_path: Path) -> None:
    site = tmp_path / "python"
    (site / "slowpkg" / "tests").mkdir(parents=True)
    (site / "slowpkg" / "__init__.py").write_text("")
    (site / "slowpkg" / "tests" / "test_slow.py").write_text(
        "import time\n\ndef test_fast():\n    pass\n\ndef test_slow():\n    time.sleep(60)\n"
    )
    suite = Suite("slowpkg", ("slowpkg",), "", 5, ())
    run = run_suite(sys.executable, suite, [str(site)], site, tmp_path, fast=False, label="x")
    assert run.timed_out and run.results["slowpkg/tests/test_slow.py::test_fast"].outcome == "passed"
    comparison = compare_suite("slowpkg", run, run, {}, {}, {})
    assert any("over its time budget" in p for p in comparison.problems)


def _run(**outcomes: NodeOutcome) -> SuiteRun:
    return SuiteRun(results={k.replace("__", "::"): v for k, v in outcomes.items()})


def test_only_tests_passing_unstripped_and_failing_stripped_fail() -> None:
    ok, bad = NodeOutcome("passed"), NodeOutcome("failed", "E", "")
    reference = _run(t__a=ok, t__b=ok, t__c=bad, t__d=ok, t__e=NodeOutcome("skipped"))
    header_error = NodeOutcome("failed", "FileNotFoundError: npy_math.h", "... numpy/_core/include/npy_math.h ...")
    stripped = _run(t__a=ok, t__b=header_error, t__c=bad, t__d=NodeOutcome("failed", "doc", "x.__doc__ is None"))
    removed = {"numpy/_core/include/npy_math.h": "c-sources-and-headers"}
    result = compare_suite("numpy", reference, stripped, {"t::d": "checks its own docstring"}, removed, {})
    assert [(r.node, r.blame) for r in result.stripped_only] == [
        ("t::b", "strip rule 'c-sources-and-headers' (removed numpy/_core/include/npy_math.h)"),
        ("t::e", "unknown: no removed file is named in the error; compare the two trees"),  # did not run stripped
    ]
    assert result.expected == {"t::d": "checks its own docstring"}
    assert (result.passed_unstripped, result.passed_stripped, result.failed_unstripped) == (4, 1, 1)
    assert "t::b: FileNotFoundError: npy_math.h" in failure_lines({"core": [result]})[0]


def test_a_test_module_that_only_fails_to_import_stripped_is_a_failure() -> None:
    stripped = _run(
        **{"t": NodeOutcome("error", "ModuleNotFoundError: No module named 'p.gone'", "No module named 'p.gone'")}
    )
    result = compare_suite(
        "p",
        SuiteRun(results={"t::x": NodeOutcome("passed")}),
        stripped,
        {},
        {"p/gone.pyi": "stubs", "p/gone.py": "rule"},
        {},
    )
    assert [r.node for r in result.stripped_only] == ["t::x", "t"]
    assert result.stripped_only[1].blame == "strip rule 'rule' (removed p/gone.py)"


def test_blame_falls_back_to_the_build_setting_the_error_points_at() -> None:
    settings = {"bytecode": "sourceless", "docstrings": "docstrings = strip"}
    assert blame("OSError: could not get source code", {}, settings) == "sourceless"
    assert blame("TypeError: 'NoneType'... func.__doc__", {}, settings) == "docstrings = strip"
    assert blame("OSError: could not get source code", {}, {}).startswith("unknown")
    removed = {"numpy/_core/lib/pkgconfig/numpy.pc": "c-sources-and-headers"}
    expected = "strip rule 'c-sources-and-headers' (removed numpy/_core/lib/pkgconfig/numpy.pc)"
    assert blame("ModuleNotFoundError: No module named 'numpy._core.lib'", removed, {}) == expected


def test_suite_settings_are_checked(tmp_path: Path) -> None:
    layer_toml = (
        'budget_mb = 10\n[[upstream_tests.suites]]\nname = "x"\npaths = ["/abs"]\nbudget_s = 0\nmarker = "slow"\n'
    )
    with pytest.raises(ConfigError) as error:
        load_project(tiny_project(tmp_path, layer_toml=layer_toml).root)
    message = str(error.value)
    assert "unknown key 'marker'. Perhaps you meant 'markers'?" in message
    assert "budget_s must be a positive whole number" in message
    assert "'/abs' must be relative to the layer's python/ folder" in message


def test_the_report_has_counts_per_suite_and_each_failure(tmp_path: Path) -> None:
    reference = _run(t__a=NodeOutcome("passed"), t__b=NodeOutcome("passed"))
    stripped = _run(t__a=NodeOutcome("passed"), t__b=NodeOutcome("failed", "OSError: could not get source code", ""))
    comparison = compare_suite("numpy", reference, stripped, {}, {}, {"bytecode": 'bytecode = "sourceless"'})
    path = BuildPaths(tmp_path).upstream_tests_report("python3.12", "x86_64", fast=True)
    write_report(path, report_data("python3.12", "x86_64", True, {"core-data-science": [comparison]}))
    data = json.loads(path.read_text())
    suite = data["layers"]["core-data-science"][0]
    assert (suite["passed_unstripped"], suite["passed_stripped"], suite["stripped_only_failures"]) == (2, 1, 1)
    assert path.name == "upstream-tests-fast.json"
    markdown = path.with_suffix(".md").read_text()
    assert "| core-data-science | numpy | 2 | 1 | 1 |" in markdown
    assert '`t::b`: OSError: could not get source code (removed by: bytecode = "sourceless")' in markdown


@pytest.mark.skipif(not can_mount_opt(), reason="no private mount namespace here (needs root or user namespaces)")
def test_the_stripped_tree_runs_at_opt_where_its_bytecode_says_it_is(tmp_path: Path) -> None:
    """Bytecode compiled for /opt/python names its files there; code comparing those names with
    __file__ (pandas' warning stack levels) only works when the tree is really at /opt."""
    site = tmp_path / "opt" / "python"
    (site / "where" / "tests").mkdir(parents=True)
    (site / "where" / "__init__.py").write_text("def f():\n    pass\n")
    py_compile.compile(
        str(site / "where" / "__init__.py"),
        cfile=str(site / "where" / "__init__.pyc"),
        dfile="/opt/python/where/__init__.py",
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    (site / "where" / "__init__.py").unlink()
    (site / "where" / "tests" / "__init__.py").write_text("")
    (site / "where" / "tests" / "test_where.py").write_text(
        "import where\n\n"
        "def test_file_matches_code():\n    assert where.f.__code__.co_filename == where.__file__[:-1]\n"
    )
    suite = Suite("where", ("where",), "", 60, ())
    node = "where/tests/test_where.py::test_file_matches_code"
    elsewhere = run_suite(sys.executable, suite, [str(site)], site, tmp_path, False, "elsewhere")
    assert elsewhere.results[node].outcome == "failed"
    at_lambda_opt = run_suite(
        sys.executable, suite, ["/opt/python"], Path("/opt/python"), tmp_path, False, "opt", tuple(at_opt(site.parent))
    )
    assert at_lambda_opt.results[node].outcome == "passed", at_lambda_opt.output_tail
    assert not (Path("/opt/python") / "where").exists()  # the mount was the test's process's only


def test_declared_expectations_no_test_needed_are_named() -> None:
    comparison = SuiteComparison("pkg", expected={"pkg/tests/test_a.py::test_x": "why"})
    expected = {"pkg/tests/test_a.py": "imports a pruned module", "pkg/tests/test_b.py": "now kept"}
    assert unused_expectations(expected, [comparison]) == ["pkg/tests/test_b.py"]


ARM64_SUITES = """budget_mb = 10

[[upstream_tests.suites]]
name = "tinypkg"
paths = ["tinypkg"]
budget_s = 60
fast = ["tinypkg/tests/test_core.py"]

[upstream_tests.expected_failures]
"tinypkg/tests/test_core.py::test_everywhere" = "fails on every arch"

[upstream_tests.arch_expected_failures.arm64]
"tinypkg/tests/test_core.py::test_answer" = "fails on arm64 only"
"""


def test_arch_expected_failures_apply_to_their_arch_only(tmp_path: Path) -> None:
    tests = load_project(tiny_project(tmp_path, ARM64_SUITES).root).layer("tinylayer").upstream_tests
    assert tests.expected_on("arm64") == {
        "tinypkg/tests/test_core.py::test_everywhere": "fails on every arch",
        "tinypkg/tests/test_core.py::test_answer": "fails on arm64 only",
    }
    assert tests.expected_on("x86_64") == {"tinypkg/tests/test_core.py::test_everywhere": "fails on every arch"}


def test_arch_expected_failures_refuse_an_unknown_arch(tmp_path: Path) -> None:
    toml = ARM64_SUITES.replace("arch_expected_failures.arm64]", "arch_expected_failures.aarch64]")
    with pytest.raises(ConfigError, match="'aarch64' is not an architecture"):
        load_project(tiny_project(tmp_path, toml).root)


def test_arm64_without_zips_names_the_build_command(tmp_path: Path) -> None:
    project = load_project(tiny_project(tmp_path, ARM64_SUITES).root)
    with pytest.raises(LayerTestFailed, match=r"`inv build-layers --runtime python3\.13 --arch arm64`") as failure:
        run_upstream_tests(project, "python3.13", sys.executable, True, lambda line: None, "arm64")
    assert failure.value.exit_code == 22 and "no python3.13/arm64 layer zip" in str(failure.value)


def test_arm64_python312_cannot_run_and_says_why(tmp_path: Path) -> None:
    project = load_project(tiny_project(tmp_path, ARM64_SUITES).root)
    output = BuildPaths.of(project.root).output_dir("python3.12", "arm64")
    output.mkdir(parents=True)
    (output / "tinylayer.zip").write_bytes(b"")  # never opened: no interpreter runs it
    with pytest.raises(NotVerified, match=r"no arm64 Python 3\.12") as failure:
        run_upstream_tests(project, "python3.12", sys.executable, True, lambda line: None, "arm64")
    assert failure.value.exit_code == 31


def test_report_labels_timings_measured_under_qemu() -> None:
    comparison = SuiteComparison("numpy", passed_unstripped=3, passed_stripped=3, seconds=(40.0, 41.0))
    emulated = report_markdown(report_data("python3.13", "arm64", True, {"core": [comparison]}, True, True, ["x"]))
    native = report_markdown(report_data("python3.13", "x86_64", True, {"core": [comparison]}))
    assert "seconds (under qemu: not comparable to native)" in emulated and "- not tested: x" in emulated
    assert "under qemu" not in native and "| seconds (unstripped / stripped) |" in native
    assert timing(40.2, True) == "40 s (under qemu: not comparable to native)" and timing(40.2, False) == "40 s"


def test_arm64_zips_alone_leave_the_native_session_nothing_to_test(tmp_path: Path) -> None:
    """`nox -s arm64` in CI leaves python3.13 arm64 zips only: upstream_tests_fast-3.13 without --arch
    must skip saying so, not pass having run nothing."""
    project = load_project(tiny_project(tmp_path, ARM64_SUITES).root)
    output = BuildPaths.of(project.root).output_dir("python3.13", "arm64")
    output.mkdir(parents=True)
    (output / "tinylayer.zip").write_bytes(b"")
    native = "arm64" if os.uname().machine == "aarch64" else "x86_64"
    assert has_layers_built(project, "python3.13", "arm64")
    assert has_layers_built(project, "python3.13") is (native == "arm64")


def test_emulated_runs_pick_openblas_generic_kernels(tmp_path: Path) -> None:
    """Under qemu OpenBLAS' detected (SVE) kernels computed wrong numbers in both trees; the emulated
    runs set its generic ARMv8 kernels, and only those runs."""
    site = tmp_path / "python"
    (site / "blaspkg" / "tests").mkdir(parents=True)
    (site / "blaspkg" / "__init__.py").write_text("")
    (site / "blaspkg" / "tests" / "test_env.py").write_text(
        "import os\n\ndef test_kernels():\n    assert os.environ.get('OPENBLAS_CORETYPE') == 'ARMV8'\n"
    )
    suite = Suite("blaspkg", ("blaspkg",), "", 60, ())
    paths = [str(site)]
    emulated = run_suite(sys.executable, suite, paths, site, tmp_path, False, "e", environment=EMULATED_ENVIRONMENT)
    native = run_suite(sys.executable, suite, paths, site, tmp_path, False, "n")
    node = "blaspkg/tests/test_env.py::test_kernels"
    assert (emulated.results[node].outcome, native.results[node].outcome) == ("passed", "failed")
