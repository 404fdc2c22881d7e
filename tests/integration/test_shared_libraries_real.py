"""The real ml-libraries layer after its duplicate libgfortran and libquadmath were shared: every
extension module that loads the kept copy (directly or through scipy's OpenBLAS) imports in the
target interpreter on top of core-data-science as Lambda lays them out, one copy of each is
mapped, Fortran code through both paths computes, and the layer's smoke test passes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lambda_ml_layers.build.library_sharing import users_of
from lambda_ml_layers.build.shared_libraries import needed_by_file
from lambda_ml_layers.build.shared_objects import is_shared_object
from lambda_ml_layers.build.target_imports import lambda_sys_path
from lambda_ml_layers.checks.layer_checks import run_smoke_test
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.core.interpreters import find_interpreter
from lambda_ml_layers.core.layer_zip import extract
from lambda_ml_layers.core.runtimes import RUNTIMES
from tests.integration.test_real_layers import OUTPUT, by_name, inv_build
from tests.project_factory import REPO

pytestmark = pytest.mark.realwheels
RUNTIME = RUNTIMES["python3.12"]

# Imports each module, then computes through Fortran reached both ways (ODRPACK links the
# kept libgfortran itself; ARPACK, ODEPACK and LAPACK reach it through OpenBLAS), then lists
# the libgfortran and libquadmath files mapped into the process.
PROBE = """
import importlib, json, sys
modules = json.loads(sys.argv[1])
failures = {}
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures[name] = f"{type(exc).__name__}: {exc}"
import numpy as np
from scipy import integrate, linalg, sparse
from scipy.sparse.linalg import eigsh
a = np.array([[4.0, 1.0], [1.0, 3.0]])
assert np.allclose(a @ linalg.solve(a, [1.0, 2.0]), [1.0, 2.0])
values = eigsh(sparse.diags([1.0, 2.0, 3.0, 4.0, 5.0]), k=1, which="LA", return_eigenvectors=False)
assert abs(values[0] - 5.0) < 1e-8
y = integrate.odeint(lambda y, t: -y, 1.0, [0.0, 1.0])
assert abs(y[-1, 0] - np.exp(-1.0)) < 1e-6
try:
    from scipy import odr
except ImportError:  # pruned from the layer: nothing of it to check
    pass
else:
    x = np.linspace(0.0, 1.0, 20)
    fit = odr.ODR(odr.RealData(x, 2.0 * x + 1.0), odr.unilinear).run()
    assert np.allclose(fit.beta, [2.0, 1.0])
maps = open("/proc/self/maps").read().splitlines()
mapped = sorted({line.split()[-1] for line in maps if "libgfortran" in line or "libquadmath" in line})
print(json.dumps({"failures": failures, "mapped": mapped}))
"""


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return inv_build()


@pytest.fixture(scope="module")
def opt(report: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    opt = tmp_path_factory.mktemp("opt")
    for name in ("core-data-science", "ml-libraries"):
        extract(OUTPUT / f"{name}.zip", opt)
    return opt


def module_of(rel: str) -> str:
    """scipy/linalg/_fblas.cpython-312-x86_64-linux-gnu.so -> scipy.linalg._fblas"""
    return rel.split(".", 1)[0].replace("/", ".")


def test_the_build_shared_libgfortran_and_libquadmath(report: dict[str, Any]) -> None:
    step = next(s for s in by_name(report)["ml-libraries"]["steps"] if s["step"] == "share-libraries")
    assert step["warnings"] == []
    assert step["files_removed"] == 2
    assert step["bytes_removed"] > 3_000_000
    assert [note.split(":")[0] for note in step["notes"][:2]] == [
        "shared libgfortran.so.5.0.0",
        "shared libquadmath.so.0.0.0",
    ]


def test_one_copy_remains_and_every_needed_name_is_there(opt: Path) -> None:
    site = opt / "python"
    libs = site / "scipy.libs"
    assert len(list(libs.glob("libgfortran-*"))) == 1
    assert len(list(libs.glob("libquadmath-*"))) == 1
    bundled = {p.name for p in site.glob("*.libs/*")}
    shared = [str(p.relative_to(site)) for p in site.rglob("*") if p.is_file() and is_shared_object(p.name)]
    needed, unreadable = needed_by_file(site, shared)
    assert unreadable == []
    # Bundled names carry auditwheel's hash; libc.so.6 and ld-linux-x86-64.so.2 come from the OS.
    hashed = re.compile(r"-[0-9a-f]{8}[-.]")
    dangling = {rel: n for rel, names in needed.items() for n in names if hashed.search(n) and n not in bundled}
    assert dangling == {}


def test_every_extension_that_loads_the_kept_libgfortran_imports_and_computes(opt: Path, tmp_path: Path) -> None:
    site = opt / "python"
    kept = {str(p.relative_to(site)) for p in (site / "scipy.libs").glob("libgfortran-*")}
    shared = [str(p.relative_to(site)) for p in site.rglob("*") if p.is_file() and is_shared_object(p.name)]
    needed, _ = needed_by_file(site, shared)
    extensions = sorted(module_of(rel) for rel in users_of(kept, needed) if not rel.split("/")[0].endswith(".libs"))
    assert "scipy.linalg._fblas" in extensions and "scipy.linalg._flapack" in extensions
    assert len(extensions) >= 10, extensions
    python = find_interpreter(RUNTIME)
    script = tmp_path / "probe.py"
    script.write_text(f"import sys\nsys.path[:0] = {lambda_sys_path(opt, RUNTIME)!r}\n" + PROBE)
    finished = subprocess.run(
        [python, "-I", "-S", "-B", str(script), json.dumps(extensions)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    outcome = json.loads(finished.stdout.strip().splitlines()[-1])
    assert outcome["failures"] == {}
    assert [Path(p).name.split("-")[0] for p in outcome["mapped"]] == ["libgfortran", "libquadmath"]
    assert all(p.startswith(str(site / "scipy.libs")) for p in outcome["mapped"])


# DORMQR hands ILAENV `SIDE // TRANS`: a Fortran string concatenation, which OpenBLAS's LAPACK
# imports from libgfortran (_gfortran_concat_string), the import the renamed DT_NEEDED serves.
BINDING_PROBE = """
import numpy as np
from scipy.linalg import lapack
a = np.random.default_rng(0).random((6, 4))
qr, tau, work, info = lapack.dgeqrf(a)
q_t, work, info = lapack.dormqr("L", "T", qr, tau, np.eye(6), lwork=64)
assert info == 0 and np.allclose(q_t @ q_t.T, np.eye(6))
print("ok")
"""


def test_openblas_binds_its_fortran_imports_to_the_kept_libgfortran(opt: Path, tmp_path: Path) -> None:
    script = tmp_path / "bindings.py"
    script.write_text(f"import sys\nsys.path[:0] = {lambda_sys_path(opt, RUNTIME)!r}\n" + BINDING_PROBE)
    log = tmp_path / "ld"
    finished = subprocess.run(
        [find_interpreter(RUNTIME), "-I", "-S", "-B", str(script)],
        cwd=tmp_path,
        env={"LD_DEBUG": "bindings", "LD_DEBUG_OUTPUT": str(log), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0 and finished.stdout.strip() == "ok", finished.stderr[-3000:]
    lines = [line for path in tmp_path.glob("ld.*") for line in path.read_text().splitlines()]
    gfortran = [line for line in lines if "libscipy_openblas-" in line and "`_gfortran_" in line]
    (kept,) = (opt / "python" / "scipy.libs").glob("libgfortran-*")  # the one copy left
    assert "_gfortran_concat_string" in {line.split("`")[1].split("'")[0] for line in gfortran}
    assert all(f"/{kept.name} [0]: normal symbol" in line and "[GFORTRAN_8]" in line for line in gfortran), gfortran


def test_the_ml_layer_smoke_test_passes(opt: Path, tmp_path: Path) -> None:
    layer = load_project(REPO).layer("ml-libraries")
    assert run_smoke_test(find_interpreter(RUNTIME), layer, opt, RUNTIME, tmp_path) == []
