"""Sharing duplicate bundled libraries: the rules on facts, and the build step on real ELF files
compiled here (two copies of one library under auditwheel-style names, their users)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.build.elf_needed import needed_names, rename_needed
from lambda_ml_layers.build.library_sharing import (
    Library,
    identical_groups,
    identical_note,
    plan_identical,
    plan_sharing,
    users_of,
)
from lambda_ml_layers.build.shared_libraries import measure, share_duplicate_libraries

needs_cc = pytest.mark.skipif(
    shutil.which("cc") is None or shutil.which("readelf") is None, reason="needs a C compiler and binutils"
)
AL2023 = (2, 34)

# --- rules on facts ------------------------------------------------------------------------


def lib(rel: str, size: int, defined: set[str], glibc: tuple[int, int] = (2, 17), sha: str = "") -> Library:
    soname = rel.rsplit("/", 1)[-1]
    return Library(rel, size, sha or rel, soname, (), frozenset(defined), glibc)


GFORTRAN = {"_gfortran_etime@GFORTRAN_8", "_gfortran_concat_string@GFORTRAN_8"}


def test_the_smaller_of_two_equal_copies_is_kept_and_users_of_the_other_are_renamed() -> None:
    long = lib("scipy.libs/libgfortran-040039e1-0352e75f.so.5.0.0", 2_833_617, GFORTRAN)
    short = lib("scipy.libs/libgfortran-83c28eba.so.5.0.0", 2_751_569, GFORTRAN, glibc=(2, 27))
    needed_by = {
        "scipy.libs/libscipy_openblas-5f890258.so": (long.soname, "libc.so.6"),
        "scipy/linalg/_fblas.so": ("libscipy_openblas-5f890258.so", short.soname),
        long.rel: ("libc.so.6",),
    }
    plan = plan_sharing([long, short], needed_by, AL2023)
    assert [(s.kept.rel, s.dropped.rel, s.rewrites) for s in plan.shares] == [
        (short.rel, long.rel, ("scipy.libs/libscipy_openblas-5f890258.so",))
    ]
    assert plan.bytes_saved == 2_833_617
    assert plan.refusals == ()


def test_a_strict_superset_is_kept_even_when_larger() -> None:
    old = lib("a.libs/libquadmath-96973f99-934c22de.so.0.0.0", 253_064, {"sinq@QUADMATH_1.0"})
    new = lib("a.libs/libquadmath-2284e583.so.0.0.0", 272_904, {"sinq@QUADMATH_1.0", "logbq@QUADMATH_1.1"})
    plan = plan_sharing([old, new], {}, AL2023)
    assert [(s.kept.rel, s.dropped.rel) for s in plan.shares] == [(new.rel, old.rel)]


def test_copies_that_each_lack_a_symbol_of_the_other_are_not_shared() -> None:
    one = lib("a.libs/libx-11111111.so.1", 10, {"f@X_1"})
    two = lib("a.libs/libx-22222222.so.1", 10, {"g@X_1"})
    plan = plan_sharing([one, two], {}, AL2023)
    assert plan.shares == ()
    assert "lacks 1 exported symbol(s) of the others, e.g. g@X_1" in plan.refusals[0]


def test_a_copy_needing_a_newer_glibc_than_the_runtime_is_not_kept() -> None:
    short = lib("a.libs/libx-11111111.so.1", 10, {"f@X_1"}, glibc=(2, 27))
    long = lib("a.libs/libx-22222222-33333333.so.1", 20, {"f@X_1"}, glibc=(2, 17))
    plan = plan_sharing([short, long], {}, (2, 26))  # python3.11: Amazon Linux 2
    assert plan.shares == ()
    assert "cannot be written in place" in plan.refusals[0]


def test_copies_in_different_folders_are_not_one_library() -> None:
    one = lib("numpy.libs/libx-11111111.so.1", 10, {"f@X_1"}, sha="same")
    two = lib("scipy.libs/libx-22222222.so.1", 10, {"f@X_1"}, sha="same")
    assert plan_sharing([one, two], {}, AL2023).shares == ()


def test_users_of_a_kept_library_include_those_that_reach_it_through_another() -> None:
    needed_by = {
        "s.libs/libblas-1.so": ("libgfortran-2.so.5",),
        "s/linalg/_fblas.so": ("libblas-1.so",),
        "s/linalg/_deeper.so": ("_fblas.so",),
        "s/other.so": ("libc.so.6",),
    }
    assert users_of({"s.libs/libgfortran-2.so.5"}, needed_by) == [
        "s.libs/libblas-1.so",
        "s/linalg/_deeper.so",
        "s/linalg/_fblas.so",
    ]


# --- real ELF files ------------------------------------------------------------------------


def cc(out: Path, source: str, *flags: str) -> None:
    src = out.with_suffix(".c")
    src.write_text(source)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(out), str(src), *flags], check=True)
    src.unlink()


def version_script(folder: Path, symbols: list[str]) -> str:
    script = folder / "v.map"
    script.write_text("DUP_1 { global: " + " ".join(f"{s};" for s in symbols) + " local: *; };\n")
    return f"-Wl,--version-script={script}"


def make_layer(tmp_path: Path, *, kept_extra_need: str | None = None, other_symbol: str = "dup_value") -> Path:
    """site/pkg.libs: libdup-aaaaaaaa.so.1 and libdup-bbbbbbbb-cccccccc.so.1 (one library twice),
    libuser-dddddddd.so (needs the long-named copy), pkg/_ext.so (needs the short one)."""
    site = tmp_path / "python"
    libs = site / "pkg.libs"
    libs.mkdir(parents=True)
    build = tmp_path / "cc"
    build.mkdir()
    short, long = "libdup-aaaaaaaa.so.1", "libdup-bbbbbbbb-cccccccc.so.1"
    extra: list[str] = []
    if kept_extra_need:  # a dependency that will be missing at load time
        cc(build / kept_extra_need, "int gone(void) { return 1; }", f"-Wl,-soname,{kept_extra_need}")
        extra = ["-Wl,--no-as-needed", f"-L{build}", f"-l:{kept_extra_need}"]
    cc(
        libs / short,
        "int dup_value(void) { return 42; }",
        f"-Wl,-soname,{short}",
        version_script(build, ["dup_value"]),
        *extra,
    )
    cc(
        libs / long,
        f"int {other_symbol}(void) {{ return 42; }}",
        f"-Wl,-soname,{long}",
        version_script(build, [other_symbol]),
    )
    cc(
        libs / "libuser-dddddddd.so",
        "int dup_value(void); int user_value(void) { return dup_value() + 1; }",
        "-Wl,-soname,libuser-dddddddd.so",
        f"-L{libs}",
        f"-l:{long}",
        "-Wl,-rpath,$ORIGIN",
    )
    (site / "pkg").mkdir()
    cc(
        site / "pkg" / "_ext.so",
        "int dup_value(void); int user_value(void); int ext_value(void) { return dup_value() + user_value(); }",
        f"-L{libs}",
        f"-l:{short}",
        "-l:libuser-dddddddd.so",
        "-Wl,-rpath,$ORIGIN/../pkg.libs",
    )
    return site


def snapshot(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


@needs_cc
def test_the_step_drops_the_copy_renames_its_users_and_they_still_work(tmp_path: Path) -> None:
    site = make_layer(tmp_path)
    dropped = site / "pkg.libs" / "libdup-bbbbbbbb-cccccccc.so.1"
    size = dropped.stat().st_size
    step = share_duplicate_libraries(site, sys.executable, "x86_64", AL2023)
    assert step.warnings == ()
    assert (step.files_removed, step.bytes_removed) == (1, size)
    assert not dropped.exists()
    user = site / "pkg.libs" / "libuser-dddddddd.so"
    assert "libdup-aaaaaaaa.so.1" in needed_names(user.read_bytes())
    assert (
        "libdup-bbbbbbbb-cccccccc.so.1"
        not in subprocess.run(["readelf", "-dVW", str(user)], capture_output=True, text=True, check=True).stdout
    )
    assert any("shared libdup.so.1: kept pkg.libs/libdup-aaaaaaaa.so.1" in note for note in step.notes)
    # Proven on the kept copy, libuser (renamed) and the extension (through both).
    assert any(note.startswith("3 shared objects") for note in step.notes)
    # One copy serves both paths: the extension's own and the one through libuser.
    ext = ctypes.CDLL(str(site / "pkg" / "_ext.so"))
    assert ext.ext_value() == 42 + 43
    # Run again: nothing left to share.
    again = share_duplicate_libraries(site, sys.executable, "x86_64", AL2023)
    assert (again.files_removed, again.notes) == (0, ("no duplicate bundled libraries",))


@needs_cc
def test_copies_with_different_exports_are_left_byte_for_byte(tmp_path: Path) -> None:
    site = make_layer(tmp_path, other_symbol="other_value")
    before = snapshot(site)
    step = share_duplicate_libraries(site, sys.executable, "x86_64", AL2023)
    assert step.files_removed == 0
    assert snapshot(site) == before
    assert any(note.startswith("not shared libdup.so.1") for note in step.notes)


@needs_cc
def test_a_sharing_whose_users_fail_to_load_is_undone(tmp_path: Path) -> None:
    site = make_layer(tmp_path, kept_extra_need="libmissing.so.1")
    before = snapshot(site)
    step = share_duplicate_libraries(site, sys.executable, "x86_64", AL2023)
    assert step.files_removed == 0 and step.bytes_removed == 0
    assert snapshot(site) == before
    assert "put back as they were" in step.warnings[0]
    assert "libmissing.so.1" in step.warnings[0]


@needs_cc
def test_the_plan_on_real_files_reads_sonames_symbols_and_glibc(tmp_path: Path) -> None:
    site = make_layer(tmp_path)
    plan, needed, unreadable = measure(site, AL2023)
    assert unreadable == []
    assert needed["pkg/_ext.so"][:2] == ("libdup-aaaaaaaa.so.1", "libuser-dddddddd.so")
    share = plan.shares[0]
    # the version node itself is listed too (nm shows it as an absolute symbol)
    assert share.kept.defined == frozenset({"dup_value@DUP_1", "DUP_1"}) == share.dropped.defined
    assert share.kept.glibc <= AL2023
    assert share.rewrites == ("pkg.libs/libuser-dddddddd.so",)


@needs_cc
def test_a_longer_name_or_a_missing_entry_is_refused(tmp_path: Path) -> None:
    site = make_layer(tmp_path)
    data = (site / "pkg.libs" / "libuser-dddddddd.so").read_bytes()
    with pytest.raises(ValueError, match="longer"):
        rename_needed(data, "libdup-bbbbbbbb-cccccccc.so.1", "libdup-bbbbbbbb-cccccccc-eeeeeeee.so.1")
    with pytest.raises(ValueError, match="no DT_NEEDED entry"):
        rename_needed(data, "libnothere.so.1", "libx.so.1")
    with pytest.raises(ValueError, match="not an ELF file"):
        rename_needed(b"#!/bin/sh\n" * 10, "a", "b")


@needs_cc
def test_every_exported_symbol_is_compared_not_only_the_last_lines_of_nm(tmp_path: Path) -> None:
    """Libraries export thousands of symbols (scipy's OpenBLAS: 11,346): a copy lacking the
    first of 2,500 must not pass as serving the other."""
    site = tmp_path / "python"
    libs = site / "pkg.libs"
    libs.mkdir(parents=True)
    many = "".join(f"int f{i:04d}(void) {{ return {i}; }}\n" for i in range(2500))
    cc(libs / "libbig-aaaaaaaa.so.1", many, "-Wl,-soname,libbig-aaaaaaaa.so.1")
    cc(
        libs / "libbig-bbbbbbbb-cccccccc.so.1",
        "int a_first(void) { return 0; }\n" + many,
        "-Wl,-soname,libbig-bbbbbbbb-cccccccc.so.1",
    )
    plan, _, _ = measure(site, AL2023)
    # Only the long-named copy serves the other, and its name does not fit: nothing shared.
    assert plan.shares == ()
    assert "the kept name libbig-bbbbbbbb-cccccccc.so.1 is longer" in plan.refusals[0]


def test_identical_copies_are_grouped_largest_waste_first() -> None:
    files = {
        "pyarrow/libarrow_python.so": (7_000, "a"),
        "pyarrow/libarrow_python.so.2100": (7_000, "a"),
        "pyarrow/libarrow_python.so.2100.0.0": (7_000, "a"),
        "pkg/small.so": (10, "b"),
        "pkg/small_copy.so": (10, "b"),
        "pkg/same_size_other_bytes.so": (7_000, "c"),
    }
    groups = identical_groups(files)
    assert groups == [
        (
            ("pyarrow/libarrow_python.so", "pyarrow/libarrow_python.so.2100", "pyarrow/libarrow_python.so.2100.0.0"),
            7_000,
        ),
        (("pkg/small.so", "pkg/small_copy.so"), 10),
    ]
    assert "7,000 bytes each; 14,000 bytes in the extra copies" in identical_note(*groups[0], "why")


@needs_cc
def test_identical_copies_no_name_of_which_is_used_all_stay_and_are_reported(tmp_path: Path) -> None:
    # The pyarrow shape without what makes a name safe to keep: no SONAME, no DT_NEEDED on any
    # of them. Which one something loads is then unknown, so none goes. Any real ELF library serves.
    site = tmp_path / "python"
    (site / "pyarrow").mkdir(parents=True)
    real = next(Path(sys.base_prefix, "lib").glob("python3*/lib-dynload/_json*.so"))
    names = ("libarrow_python.so", "libarrow_python.so.2100", "libarrow_python.so.2100.0.0")
    for name in names:
        shutil.copy(real, site / "pyarrow" / name)
    before = snapshot(site)
    step = share_duplicate_libraries(site, sys.executable, "x86_64", AL2023)
    size = real.stat().st_size
    assert snapshot(site) == before and step.files_removed == 0
    assert step.notes == (
        f"identical bytes, kept as 3 files: {', '.join(f'pyarrow/{n}' for n in names)} ({size:,} bytes each; "
        f"{2 * size:,} bytes in the extra copies). Not shared: none of the names is in a DT_NEEDED, the SONAME, "
        f"an extension module or named in the .py sources, so which one is loaded is unknown.",
    )


def test_a_name_stays_if_the_loader_python_or_the_sources_may_look_for_it() -> None:
    group = (
        "pkg/_mod.so",  # exports PyInit__mod: Python imports it
        "pkg/libz.so",  # unused: goes
        "pkg/libz.so.1",  # the SONAME
        "pkg/libz.so.1.2",  # named in a .py file
        "pkg/x.abi3.so",  # an extension module by its tag
        "pkg/y.cpython-312-x86_64-linux-gnu.so",
        "vendor/libz.so.1.0",  # another folder, in a DT_NEEDED there
    )
    unused = (("other/a.so", "other/b.so"), 5)
    plans = plan_identical(
        [(group, 100), unused],
        {group: "libz.so.1", unused[0]: None},
        needed=frozenset({"libz.so.1.0", "libc.so.6"}),
        extensions=frozenset({"pkg/_mod.so", "pkg/x.abi3.so", "pkg/y.cpython-312-x86_64-linux-gnu.so"}),
        in_sources=frozenset({"libz.so.1.2"}),
    )
    assert plans[0].dropped == ("pkg/libz.so",)
    assert dict(plans[0].kept) == {
        "pkg/_mod.so": "an extension module",
        "pkg/libz.so.1": "its SONAME",
        "pkg/libz.so.1.2": "named in the .py sources",
        "pkg/x.abi3.so": "an extension module",
        "pkg/y.cpython-312-x86_64-linux-gnu.so": "an extension module",
        "vendor/libz.so.1.0": "in a DT_NEEDED",
    }
    assert plans[0].note().startswith("identical bytes: removed pkg/libz.so (100 bytes each, 100 bytes in all)")
    assert plans[1].dropped == () and "which one is loaded is unknown" in plans[1].note()


def make_identical(tmp_path: Path, kept_extra_need: str | None = None) -> Path:
    """pkg/libfoo.so.1 (SONAME, needed by pkg/_user.so) and three byte-identical copies: libfoo.so
    (nothing names it), libfoo.so.1.0.0 (pkg/__init__.py dlopens it by name) and one that Python
    imports (an ABI tag)."""
    site = tmp_path / "python"
    pkg = site / "pkg"
    pkg.mkdir(parents=True)
    extra: list[str] = []
    if kept_extra_need:  # a dependency that will be missing at load time
        build = tmp_path / "cc"
        build.mkdir()
        cc(build / kept_extra_need, "int gone(void) { return 1; }", f"-Wl,-soname,{kept_extra_need}")
        extra = ["-Wl,--no-as-needed", f"-L{build}", f"-l:{kept_extra_need}"]
    cc(pkg / "libfoo.so.1", "int foo_value(void) { return 7; }", "-Wl,-soname,libfoo.so.1", *extra)
    for name in ("libfoo.so", "libfoo.so.1.0.0", "foo.abi3.so"):
        shutil.copy(pkg / "libfoo.so.1", pkg / name)
    cc(
        pkg / "_user.so",
        "int foo_value(void); int user_value(void) { return foo_value() + 1; }",
        f"-L{pkg}",
        "-l:libfoo.so.1",
        "-Wl,-rpath,$ORIGIN",
    )
    (pkg / "__init__.py").write_text(
        'import ctypes, os\n_lib = ctypes.CDLL(os.path.join(os.path.dirname(__file__), "libfoo.so.1.0.0"))\n'
    )
    return site


@needs_cc
def test_an_identical_copy_nothing_names_is_removed_and_the_named_ones_stay_and_load(tmp_path: Path) -> None:
    site = make_identical(tmp_path)
    pkg = site / "pkg"
    size = (pkg / "libfoo.so").stat().st_size
    step = share_duplicate_libraries(site, sys.executable, "x86_64", AL2023)
    assert step.warnings == ()
    assert (step.files_removed, step.bytes_removed) == (1, size)
    assert not (pkg / "libfoo.so").exists()
    assert all((pkg / name).exists() for name in ("libfoo.so.1", "libfoo.so.1.0.0", "foo.abi3.so", "_user.so"))
    assert step.notes[0] == (
        f"identical bytes: removed pkg/libfoo.so ({size:,} bytes each, {size:,} bytes in all); kept pkg/foo.abi3.so "
        f"(an extension module); pkg/libfoo.so.1 (in a DT_NEEDED, its SONAME); pkg/libfoo.so.1.0.0 (named in the .py "
        f"sources)"
    )
    # proven on the kept copies and the one that loads libfoo.so.1
    assert step.notes[1].startswith("4 shared objects")
    assert ctypes.CDLL(str(pkg / "_user.so")).user_value() == 8
    again = share_duplicate_libraries(site, sys.executable, "x86_64", AL2023)
    assert again.files_removed == 0 and "Not shared: every name is in use" in again.notes[0]


@needs_cc
def test_an_identical_copy_removal_whose_users_fail_to_load_is_undone(tmp_path: Path) -> None:
    site = make_identical(tmp_path, kept_extra_need="libmissing.so.1")
    before = snapshot(site)
    step = share_duplicate_libraries(site, sys.executable, "x86_64", AL2023)
    assert (step.files_removed, step.bytes_removed) == (0, 0)
    assert snapshot(site) == before
    assert step.warnings[0].startswith("identical copies not removed: put back as they were")
    assert "libmissing.so.1" in step.warnings[0]


@needs_cc
def test_identical_copies_after_a_sharing_are_proven_on_the_renamed_users(tmp_path: Path) -> None:
    """The identical-copy step uses the DT_NEEDED names as the sharing left them (read once):
    libuser, renamed to need the kept copy, is among what loads it and must be proven."""
    site = make_layer(tmp_path)
    kept = site / "pkg.libs" / "libdup-aaaaaaaa.so.1"
    shutil.copy(kept, site / "pkg" / "libdup-copy.so")  # byte-identical; nothing names it
    step = share_duplicate_libraries(site, sys.executable, "x86_64", AL2023)
    assert step.warnings == ()
    assert step.files_removed == 2 and not (site / "pkg" / "libdup-copy.so").exists()
    # the kept copy, libuser (needs it since the sharing) and the extension
    assert any(note.startswith("3 shared objects (the kept identical copies") for note in step.notes), step.notes
    assert ctypes.CDLL(str(site / "pkg" / "_ext.so")).ext_value() == 42 + 43
