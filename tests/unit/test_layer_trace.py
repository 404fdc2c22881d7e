"""`inv trace-layers` pieces on real files: the manifest's text (round trip, order, staleness), the
tracer script run for real on a tiny opt/ folder, and the attribution of what it saw to layers."""

from __future__ import annotations

import _bisect
import ctypes.util
import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.config.trace_manifest import Trace, changed_lines, parse_trace, read_trace, render_trace
from lambda_ml_layers.core.command_runner import call
from lambda_ml_layers.core.errors import TraceFailed
from lambda_ml_layers.layer_trace.attribution import (
    LayerUsage,
    LoadRecord,
    attribute,
    index_layers,
    module_of,
    zip_files,
)
from lambda_ml_layers.layer_trace.command import (
    TraceOutcome,
    check_manifests,
    libraries_needs,
    trace_layers,
    union,
    write_manifests,
)
from lambda_ml_layers.layer_trace.runs import TracedRun
from lambda_ml_layers.target_scripts import traced
from tests.project_factory import tiny_project

TRACE = Trace(
    layer="core",
    runtime="python3.12",
    arch="x86_64",
    runs=frozenset({"smoke test core", "function F: sample batch, bad batch"}),
    modules=frozenset({"pandas.io.parsers", "numpy", "pandas"}),
    files=frozenset({"tzdata/zoneinfo/UTC", "pkg/data/a b.csv"}),
    libraries={"numpy.libs/libopenblas.so": ("libm.so.6", "libc.so.6"), "x.libs/libnothing.so": ()},
)


# --- the manifest ------------------------------------------------------------------------


def test_render_then_parse_gives_the_same_trace_back() -> None:
    text = render_trace(TRACE)
    assert parse_trace(text) == TRACE
    assert render_trace(parse_trace(text)) == text


def test_the_manifest_is_sorted_deterministic_and_in_the_agreed_format() -> None:
    text = render_trace(TRACE)
    lines = text.splitlines()
    assert lines[0] == "# Trace of layer core (python3.12, x86_64): what the traced runs loaded from this layer."
    assert lines[1] == "# Regenerate with `inv trace-layers`; review the diff like code (docs/layer-contract.md)."
    assert lines[2:4] == ["# Runs: function F: sample batch, bad batch", "# Runs: smoke test core"]
    assert lines[4:] == [
        "module numpy",
        "module pandas",
        "module pandas.io.parsers",
        "file pkg/data/a b.csv",
        "file tzdata/zoneinfo/UTC",
        "library numpy.libs/libopenblas.so  needs: libm.so.6, libc.so.6",
        "library x.libs/libnothing.so  needs:",
    ]
    shuffled = Trace(
        "core", "python3.12", "x86_64", TRACE.runs, TRACE.modules, TRACE.files, dict(reversed(TRACE.libraries.items()))
    )
    assert render_trace(shuffled) == text
    assert "/tmp" not in text and "/opt" not in text


def test_a_line_the_parser_cannot_read_names_the_file_the_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "trace.txt"
    path.write_text(render_trace(TRACE) + "modul numpy\n")
    with pytest.raises(TraceFailed) as caught:
        read_trace(path)
    assert f"{path}, line 12: cannot read 'modul numpy'" in str(caught.value)
    assert "inv trace-layers" in str(caught.value)
    assert caught.value.exit_code == 24


def test_a_missing_manifest_is_a_trace_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(TraceFailed, match=r"(?s)cannot be read.*Fix: `inv trace-layers`"):
        read_trace(tmp_path / "nope" / "trace.txt")


def test_changed_lines_show_what_a_regeneration_would_remove_and_add() -> None:
    fresh = render_trace(TRACE)
    assert changed_lines(fresh, fresh) == []
    stale = fresh.replace("module pandas.io.parsers\n", "module pandas.io.excel\n")
    assert changed_lines(stale, fresh) == ["- module pandas.io.excel", "+ module pandas.io.parsers"]
    assert changed_lines(None, fresh) == [f"+ {line}" for line in fresh.splitlines()]


def outcome_for(trace: Trace) -> TraceOutcome:
    return TraceOutcome({trace.layer: trace}, {trace.layer: LayerUsage()}, {trace.layer: 1}, {trace.layer: 1}, [])


def test_check_fails_on_a_stale_or_missing_manifest_and_passes_on_a_fresh_one(tmp_path: Path) -> None:
    project = load_project(tiny_project(tmp_path).root)
    trace = Trace("tinylayer", "python3.12", "x86_64", frozenset({"smoke test tinylayer"}), frozenset({"tinypkg"}))
    manifest = project.layer("tinylayer").folder / "trace.txt"

    with pytest.raises(TraceFailed) as missing:
        check_manifests(project, outcome_for(trace))
    assert "layers/tinylayer/trace.txt is missing" in str(missing.value)
    assert not manifest.exists()  # --check writes nothing

    assert write_manifests(project, outcome_for(trace)).changed == [manifest]
    assert read_trace(manifest) == trace
    check_manifests(project, outcome_for(trace))

    grown = Trace(trace.layer, trace.runtime, trace.arch, trace.runs, frozenset({"tinypkg", "tinypkg.core"}))
    with pytest.raises(TraceFailed) as stale:
        check_manifests(project, outcome_for(grown))
    message = str(stale.value)
    assert "layers/tinylayer/trace.txt is stale; 1 lines would change:" in message
    assert "+ module tinypkg.core" in message and "Fix: run `inv trace-layers`" in message


def test_an_unchanged_manifest_is_not_rewritten_and_a_failed_write_keeps_the_old_one(tmp_path: Path) -> None:
    project = load_project(tiny_project(tmp_path).root)
    trace = Trace("tinylayer", "python3.12", "x86_64", frozenset({"smoke test tinylayer"}), frozenset({"tinypkg"}))
    manifest = project.layer("tinylayer").folder / "trace.txt"
    write_manifests(project, outcome_for(trace))
    before = manifest.stat().st_mtime_ns
    assert write_manifests(project, outcome_for(trace)).changed == []
    assert manifest.stat().st_mtime_ns == before

    # The file beside it that the new text goes to first cannot be written (a folder is in its way).
    (manifest.parent / ".trace.txt.part").mkdir()
    grown = Trace(trace.layer, trace.runtime, trace.arch, trace.runs, frozenset({"tinypkg", "tinypkg.core"}))
    with pytest.raises(TraceFailed, match="Could not write the trace manifests"):
        write_manifests(project, outcome_for(grown))
    assert read_trace(manifest) == trace


def test_without_built_layers_the_command_names_the_build_to_run(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    with pytest.raises(TraceFailed) as caught:
        trace_layers(project.root, check=True, say=lambda line: None)
    message = str(caught.value)
    assert "tinylayer.zip is missing: run `inv build-layers --runtime python3.12 --arch" in message
    assert caught.value.exit_code == 24


# --- the tracer and the attribution, on real files ------------------------------------------


def make_layer_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def system_library(name: str) -> Path:
    """Where this machine's lib<name> is: loaded here, then looked up in the process map."""
    soname = ctypes.util.find_library(name)
    assert soname, f"lib{name} is on every machine this runs on"
    ctypes.CDLL(soname)
    maps = Path("/proc/self/maps").read_text().splitlines()
    return Path(
        next(line.split()[-1] for line in maps if line.split()[-1].rsplit("/", 1)[-1].startswith(f"lib{name}.so"))
    )


@pytest.fixture
def two_layers(tmp_path: Path) -> tuple[Path, dict[str, list[tuple[str, int]]]]:
    """Two real layer zips extracted into one opt/ (base first), as the sandbox lays them out:
    `base` ships a package with data and a shared library, `top` a package with an extension
    module (a real one: this interpreter's _bisect) and overwrites one of base's files."""
    libz_path = system_library("z")
    base = make_layer_zip(
        tmp_path / "base.zip",
        {
            "python/basepkg/__init__.py": b"from basepkg import helper\n",
            "python/basepkg/helper.py": b"VALUE = 1\n",
            "python/basepkg/unused.py": b"VALUE = 2\n",
            "python/basepkg/data/table.csv": b"a,b\n1,2\n",
            "python/basepkg/data/unread.csv": b"a,b\n",
            "python/base.libs/libz-copy.so.1": libz_path.read_bytes(),
            "python/shared.txt": b"from base\n",
        },
    )
    top = make_layer_zip(
        tmp_path / "top.zip",
        {
            "python/toppkg/__init__.py": b"import _bisect\n",
            f"python/{Path(_bisect.__file__).name}": Path(_bisect.__file__).read_bytes(),
            "python/shared.txt": b"from top\n",
        },
    )
    opt = tmp_path / "opt"
    for layer_zip in (base, top):
        with zipfile.ZipFile(layer_zip) as archive:
            archive.extractall(opt)
    return opt, {"base": zip_files(base), "top": zip_files(top)}


def run_traced(tmp_path: Path, opt: Path, script_text: str) -> LoadRecord:
    records = tmp_path / "records"
    records.mkdir()
    script = tmp_path / "user.py"
    script.write_text(script_text)
    command = [sys.executable, "-I", "-S", "-B", *traced(records, opt, [str(opt / "python")]), str(script), "arg"]
    call(command, cwd=tmp_path, timeout=60)
    [record] = sorted(records.glob("trace-*.json"))
    return LoadRecord.read(record)


USER = """
import ctypes, os, sys
assert sys.argv[1:] == ["arg"], sys.argv
import basepkg, toppkg
here = os.path.dirname(basepkg.__file__)
import pathlib
pathlib.Path(here, "data", "table.csv").read_text()  # through pathlib, as libraries often open files
with open(os.path.join(os.path.dirname(here), "shared.txt")) as shared:
    assert shared.read() == "from top\\n"
ctypes.CDLL(os.path.join(os.path.dirname(here), "base.libs", "libz-copy.so.1"))
"""


def test_the_tracer_records_modules_data_files_and_libraries_attributed_to_their_layer(
    tmp_path: Path, two_layers: tuple[Path, dict[str, list[tuple[str, int]]]]
) -> None:
    opt, files = two_layers
    record = run_traced(tmp_path, opt, USER)
    assert "python/basepkg/data/table.csv" in record.opened
    assert "python/base.libs/libz-copy.so.1" in record.loaded  # ctypes.dlopen and the process map

    usage = attribute(record, index_layers([("base", files["base"]), ("top", files["top"])]), ["python"])
    assert usage["base"].modules == {"basepkg", "basepkg.helper"}  # not basepkg.unused: never imported
    assert usage["base"].files == {"basepkg/data/table.csv"}
    assert usage["base"].libraries == {"base.libs/libz-copy.so.1"}
    assert usage["top"].modules == {"toppkg", "_bisect"}  # the extension module, from the process map
    # shared.txt is in both zips; the later layer's copy is the one in opt/, so top gave it.
    assert usage["top"].files == {"shared.txt"}
    assert "python/shared.txt" not in usage["base"].covered


def test_the_union_over_runs_only_counts_the_layers_each_run_had(
    tmp_path: Path, two_layers: tuple[Path, dict[str, list[tuple[str, int]]]]
) -> None:
    opt, files = two_layers
    record = run_traced(tmp_path, opt, USER)
    # The same record in a run that had only `base`: shared.txt is then base's own.
    total = union([TracedRun("only base", ("base",), (record,))], files, ["python"])
    assert set(total) == {"base"} and "shared.txt" in total["base"].files


def test_library_needs_come_from_the_libraries_dynamic_section(
    tmp_path: Path, two_layers: tuple[Path, dict[str, list[tuple[str, int]]]]
) -> None:
    if shutil.which("readelf") is None:
        pytest.skip("needs binutils' readelf, as the build's shared-object step does")
    needs = libraries_needs(tmp_path / "base.zip", {"base.libs/libz-copy.so.1"}, tmp_path / "needs")
    assert "libc.so.6" in needs["base.libs/libz-copy.so.1"]


def test_bytecode_cached_beside_source_counts_as_its_module() -> None:
    assert module_of("pkg/__pycache__/mod.cpython-312.pyc") == "pkg.mod"
    assert module_of("pkg/__pycache__/__init__.cpython-312.pyc") == "pkg"
    assert module_of("pkg/mod.pyc") == "pkg.mod"
    assert module_of("pkg/data/table.csv") is None


def test_a_record_from_a_namespace_package_names_its_folder(tmp_path: Path) -> None:
    index = index_layers([("base", [("python/nspkg/sub/mod.py", 10)])])
    record = LoadRecord(modules={"nspkg": ("python/nspkg",), "nspkg.sub.mod": ("python/nspkg/sub/mod.py",)})
    usage = attribute(record, index, ["python/lib/python3.12/site-packages", "python"])
    assert usage["base"].modules == {"nspkg", "nspkg.sub.mod"}


def test_a_record_is_plain_json(tmp_path: Path, two_layers: tuple[Path, dict[str, list[tuple[str, int]]]]) -> None:
    opt, _ = two_layers
    run_traced(tmp_path, opt, "import basepkg\n")
    [path] = (tmp_path / "records").glob("trace-*.json")
    data = json.loads(path.read_text())
    assert set(data) == {"opened", "dlopened", "mapped", "modules"}
    assert data["modules"]["basepkg"] == ["python/basepkg/__init__.py"]
    assert all(not p.startswith("/") for p in data["opened"])  # relative to opt/, never absolute


# --- the sandbox's hook ---------------------------------------------------------------------


def test_a_traced_sandbox_leaves_one_record_per_container_with_only_its_layers_files(tmp_path: Path) -> None:
    from tests.unit.test_sandbox import sandbox

    records = tmp_path / "records"
    records.mkdir()
    traced_sandbox = sandbox(tmp_path)
    traced_sandbox.trace_to = records
    with traced_sandbox as box:
        assert box.invoke({"n": 1}).ok and box.invoke({"n": 2}).ok  # cold, then warm: one process
        box.stop()  # a new container: the runtime exits on its own and writes its record
        assert len(list(records.glob("trace-*.json"))) == 1
        third = box.invoke({"n": 3, "import": "json"})
        assert third.ok and third.cold
    found = [LoadRecord.read(path) for path in sorted(records.glob("trace-*.json"))]
    assert len(found) == 2
    for record in found:
        assert record.modules["shared"] == ("python/shared.py",)  # the second layer's, extracted last
        assert not any("handler" in path for path in record.opened)  # task/ is not a layer


def test_an_untraced_sandbox_writes_no_record(tmp_path: Path) -> None:
    from tests.unit.test_sandbox import sandbox

    with sandbox(tmp_path) as box:
        assert box.invoke({"n": 1}).ok
    assert not list(tmp_path.rglob("trace-*.json"))


def test_a_template_without_one_of_the_pipelines_functions_is_named_before_anything_runs(tmp_path: Path) -> None:
    from lambda_ml_layers.config.template import function_specs
    from lambda_ml_layers.core.runtimes import RUNTIMES
    from lambda_ml_layers.layer_trace.runs import TraceTarget, trace_functions
    from tests.project_factory import REPO

    specs = [s for s in function_specs(REPO / "infra" / "template.yaml") if s.name != "PredictionsFunction"]
    target = TraceTarget(REPO, RUNTIMES["python3.12"], "x86_64", sys.executable, tmp_path, tmp_path)
    with pytest.raises(TraceFailed, match=r"infra/template\.yaml has no PredictionsFunction") as caught:
        trace_functions(target, specs, server=None, model_bucket="unused")  # type: ignore[arg-type]
    assert "PIPELINE" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_layer_zip_is_named_with_the_build_that_writes_it_again(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    built = project.output_zip("tinylayer", arch=project.arch)
    built.parent.mkdir(parents=True)
    built.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(TraceFailed) as caught:
        trace_layers(project.root, check=True, say=lambda line: None)
    assert f"{built} is not a readable zip" in str(caught.value)
    assert "--force` writes it again" in str(caught.value)


def test_an_unreadable_committed_manifest_is_named_not_a_traceback(tmp_path: Path) -> None:
    project = load_project(tiny_project(tmp_path).root)
    manifest = project.layer("tinylayer").folder / "trace.txt"
    manifest.write_bytes(b"\xff\xfe not text")
    trace = Trace("tinylayer", "python3.12", "x86_64", frozenset(), frozenset({"tinypkg"}))
    with pytest.raises(TraceFailed, match=r"trace\.txt cannot be read"):
        check_manifests(project, outcome_for(trace))
