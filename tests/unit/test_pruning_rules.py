"""[prune]: the plan (which files go) and the contract messages (pure, no build)."""

from __future__ import annotations

from pathlib import Path

from lambda_ml_layers.build.pruning.contract import PrunedLayer, contract_problems, explain_missing, imported_modules
from lambda_ml_layers.build.pruning.import_holes import import_holes
from lambda_ml_layers.build.pruning.plan import modules_to_prove, part_note, plan_prune
from lambda_ml_layers.build.pruning.step import report_parts
from lambda_ml_layers.config.prune import PruneConfig
from lambda_ml_layers.config.trace_manifest import Trace

FILES = {
    "scipy/__init__.py": 10,
    "scipy/_lib/__init__.py": 10,
    "scipy/_lib/util.py": 100,
    "scipy/stats/__init__.py": 10,
    "scipy/stats/_dist.py": 300,
    "scipy/stats/_data/table.csv": 50,
    "scipy/io/__init__.py": 10,
    "scipy/io/matlab/__init__.py": 10,
    "scipy/io/matlab/_mio.py": 2000,
    "scipy/io/_fmm.cpython-312-x86_64-linux-gnu.so": 4000,
    "scipy/io/tests/data/x.mat": 700,
    "scipy/signal/__init__.py": 10,
    "scipy/signal/_filt.py": 900,
    "scipy/signal/LICENSE.txt": 5,
    "scipy/special/__init__.py": 10,
    "scipy/special/_ufuncs.cpython-312-x86_64-linux-gnu.so": 800,
    "scipy/special/libhelper.so": 600,
    "scipy/linalg/__init__.py": 10,
    "scipy/linalg/_blas.cpython-312-x86_64-linux-gnu.so": 500,
    "scipy.libs/libopenblas.so": 9000,
    "sklearn/__init__.py": 10,
}
CONFIG = PruneConfig(packages=("scipy",), keep=("scipy.stats",))
TRACE = Trace("ml-libraries", "python3.12", "x86_64", modules=frozenset({"scipy._lib.util", "sklearn"}))


def plan(config: PruneConfig = CONFIG, trace: Trace = TRACE, needs: dict[str, tuple[str, ...]] | None = None):  # type: ignore[no-untyped-def]
    return plan_prune(FILES, config, trace, needs or {}, protect=("LICENSE*",))


def test_only_what_neither_the_trace_nor_keep_covers_is_removed_and_parents_survive() -> None:
    result = plan()
    kept = set(FILES) - set(result.removed)
    assert {"scipy/__init__.py", "scipy/_lib/__init__.py", "scipy/_lib/util.py"} <= kept  # traced, with parents
    assert {"scipy/stats/__init__.py", "scipy/stats/_dist.py", "scipy/stats/_data/table.csv"} <= kept  # keep
    assert "scipy.libs/libopenblas.so" in kept and "sklearn/__init__.py" in kept  # outside packages
    assert "scipy/io/matlab/_mio.py" in result.removed
    assert "scipy/io/_fmm.cpython-312-x86_64-linux-gnu.so" in result.removed  # an extension module is a module
    assert "scipy/io/tests/data/x.mat" in result.removed  # data follows its nearest package
    assert "scipy/signal/LICENSE.txt" in kept  # protected, as strip rules protect it
    assert result.pruned_modules == ("scipy.io", "scipy.linalg", "scipy.signal", "scipy.special")
    assert result.unmatched == ()


def test_the_report_parts_are_one_level_below_the_package_entry_with_their_bytes() -> None:
    parts = plan().parts
    assert parts["scipy.io"] == (5, 10 + 10 + 2000 + 4000 + 700)
    assert parts["scipy.signal"] == (2, 910)
    assert next(iter(parts)) == "scipy.io"  # largest first
    rows = report_parts(parts, smallest=1000)
    assert rows["prune: scipy.io"] == parts["scipy.io"]
    assert rows["prune: scipy.special"] == (3, 1410)
    assert rows["prune: 2 parts under 0.0 MB"] == (4, 510 + 910)


def test_a_traced_file_and_library_survive_in_a_pruned_package() -> None:
    trace = Trace(
        "ml-libraries",
        "python3.12",
        "x86_64",
        frozenset(),
        TRACE.modules,
        frozenset({"scipy/io/tests/data/x.mat"}),
        {"scipy/special/libhelper.so": ()},
    )
    result = plan(trace=trace)
    assert "scipy/io/tests/data/x.mat" not in result.removed
    assert "scipy/special/libhelper.so" not in result.removed


def test_a_shared_library_a_kept_extension_links_to_is_rescued_transitively() -> None:
    keep_linalg = PruneConfig(packages=("scipy",), keep=("scipy.stats", "scipy.linalg"))
    needs = {
        "scipy/linalg/_blas.cpython-312-x86_64-linux-gnu.so": ("libhelper.so", "libc.so.6"),
        "scipy/special/libhelper.so": ("_ufuncs.cpython-312-x86_64-linux-gnu.so",),
    }
    result = plan(config=keep_linalg, needs=needs)
    assert "scipy/special/libhelper.so" not in result.removed
    assert "scipy/special/_ufuncs.cpython-312-x86_64-linux-gnu.so" not in result.removed  # needed by the rescued one
    assert set(result.rescued) == {
        "scipy/special/libhelper.so",
        "scipy/special/_ufuncs.cpython-312-x86_64-linux-gnu.so",
    }
    # Without the link, both go.
    assert "scipy/special/libhelper.so" in plan(config=keep_linalg).removed


def test_a_subpackage_entry_prunes_only_inside_it() -> None:
    result = plan(config=PruneConfig(packages=("scipy.io",), keep=("scipy.io.matlab",)))
    # x.mat's nearest package is scipy.io (tests/ has no __init__), which survives as keep's parent.
    assert result.removed == ("scipy/io/_fmm.cpython-312-x86_64-linux-gnu.so",)
    assert result.pruned_modules == ("scipy.io._fmm",)


def test_entries_naming_nothing_in_the_tree_are_reported() -> None:
    result = plan(config=PruneConfig(packages=("scipy", "scikit"), keep=("scipy.stats", "scipy.statz")))
    assert result.unmatched == ("scikit", "scipy.statz")


def test_a_namespace_package_without_init_can_be_kept() -> None:
    files = {**FILES, "scipy/_external/cobyqa/__init__.py": 10, "scipy/_external/cobyqa/main.py": 200}
    kept = plan_prune(files, PruneConfig(packages=("scipy",), keep=("scipy._external",)), TRACE, {})
    assert kept.unmatched == () and not any(rel.startswith("scipy/_external/") for rel in kept.removed)
    pruned = plan_prune(files, CONFIG, TRACE, {})
    assert {"scipy/_external/cobyqa/__init__.py", "scipy/_external/cobyqa/main.py"} <= set(pruned.removed)


def test_verify_proves_the_keep_entries_and_the_surviving_traced_modules() -> None:
    trace = Trace(
        "ml-libraries", "python3.12", "x86_64", modules=frozenset({"scipy._lib.util", "sklearn", "scipy.nothere"})
    )
    assert modules_to_prove(plan(trace=trace), CONFIG, trace) == ["scipy._lib.util", "scipy.stats"]


def pruned_layer(tmp_path: Path) -> PrunedLayer:
    toml = tmp_path / "layer.toml"
    toml.write_text('budget_mb = 100\n\n[prune]\npackages = ["scipy"]\nkeep = ["scipy.stats"]\n')
    return PrunedLayer("ml-libraries", toml, tmp_path / "trace.txt", ("scipy.io", "scipy.signal"))


def test_a_missing_pruned_module_is_explained_with_the_keep_line_and_the_manifest(tmp_path: Path) -> None:
    layer = pruned_layer(tmp_path)
    message = explain_missing("ModuleNotFoundError: No module named 'scipy.io.matlab'", [layer])
    assert message is not None
    assert "scipy.io.matlab was pruned from layer ml-libraries" in message
    assert f"add 'scipy.io.matlab' to [prune] keep ({tmp_path / 'layer.toml'}:5)" in message
    assert f"`module scipy.io.matlab` to {tmp_path / 'trace.txt'}" in message
    assert explain_missing("No module named 'pyarrow'", [layer]) is None  # not pruned: not ours to explain


def test_function_imports_are_read_anywhere_in_the_code_with_their_lines() -> None:
    source = "import os\nfrom sklearn import clone\n\ndef f():\n    import scipy.io as sio\n    from . import x\n"
    assert imported_modules(source, "h.py") == [
        ("os", 1),
        ("sklearn", 2),
        ("sklearn.clone", 2),
        ("scipy.io", 5),
    ]


def test_a_function_importing_pruned_code_is_named_with_file_and_line(tmp_path: Path) -> None:
    layer = pruned_layer(tmp_path)
    files = {
        "fn/handler.py": "import sklearn\nfrom scipy import stats\nfrom scipy.io import loadmat\n",
        "fn/util.py": "def f():\n    import scipy.signal\n",
    }
    provided = {"scipy", "scipy.stats", "sklearn"}
    problems = contract_problems("Predictions", files, layer, provided)
    assert len(problems) == 2
    assert problems[0].startswith("fn/handler.py:3: function Predictions imports scipy.io.")
    assert problems[1].startswith("fn/util.py:2: function Predictions imports scipy.signal.")
    assert contract_problems("Predictions", {"h.py": "from scipy import stats\n"}, layer, provided) == []


def test_an_import_of_a_pruned_module_is_a_hole_unless_accepted() -> None:
    imports = {
        "scipy/optimize/_cobyla.py": [("scipy._external.pyprima", 231), ("scipy._external.pyprima.minimize", 231)],
        "scipy/optimize/_minimize.py": [("scipy.optimize._cobyla", 5), ("numpy", 1)],
        "sklearn/utils/_test_common/gen.py": [("sklearn.cluster", 16)],
    }
    pruned = ("scipy._external", "sklearn.cluster")
    holes = import_holes(imports, pruned, {})
    assert [(h.path, h.line, h.module) for h in holes] == [
        ("scipy/optimize/_cobyla.py", 231, "scipy._external.pyprima"),  # one per statement
        ("sklearn/utils/_test_common/gen.py", 16, "sklearn.cluster"),
    ]
    # Accepted by the importing module's prefix, or by the imported module's.
    assert import_holes(imports, pruned, {"sklearn.utils._test_common": "test helpers", "scipy._external": "x"}) == []


def test_a_prune_note_names_the_files_that_went_from_a_package_that_stays() -> None:
    # The case: only sklearn/svm/_newrand went (nothing imported it), SVC still works; the note
    # used to read "sklearn.svm 0.1 MB pruned".
    files = {
        "sklearn/__init__.py": 10,
        "sklearn/svm/__init__.py": 10,
        "sklearn/svm/_classes.py": 40_000,
        "sklearn/svm/_newrand.cpython-312-x86_64-linux-gnu.so": 120_000,
        "sklearn/naive_bayes.py": 60_000,
    }
    trace = Trace("ml-libraries", "python3.12", "x86_64", modules=frozenset({"sklearn.svm._classes"}))
    result = plan_prune(files, PruneConfig(packages=("sklearn",), keep=()), trace, {})
    notes = {part: part_note(part, result.part_files[part], files, result.pruned_modules) for part in result.parts}
    assert notes["sklearn.svm"] == (
        "sklearn.svm stays; 1 file, 0.12 MB of it pruned: sklearn/svm/_newrand.cpython-312-x86_64-linux-gnu.so "
        "(0.12 MB)"
    )
    assert notes["sklearn.naive_bayes"] == "sklearn.naive_bayes pruned (1 file, 0.06 MB)"
    many = tuple(f"sklearn/svm/_x{n}.py" for n in range(5))
    note = part_note("sklearn.svm", many, dict.fromkeys(many, 1000), ())
    assert note.endswith("sklearn/svm/_x2.py (0.00 MB) and 2 more") and note.startswith("sklearn.svm stays; 5 files")
