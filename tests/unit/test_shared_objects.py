"""Stripping shared objects, on real ELF files compiled here: libraries with a RUNPATH are stripped
too, and one that no longer loads once stripped is restored without costing its users their strip."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.build.elf_layout import load_problems
from lambda_ml_layers.build.shared_objects import (
    LoaderTrace,
    check_target_machine,
    elf_machine,
    has_symbol_table,
    is_elf,
    loader_check,
    loader_refusal,
    loader_regression,
    strip_shared_objects,
    trace_with_loader,
)
from lambda_ml_layers.core.errors import VerifyError
from lambda_ml_layers.core.runtimes import ARCHES, RUNTIMES
from lambda_ml_layers.core.toolchains import Toolchain, find_toolchain

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None or shutil.which("strip") is None or shutil.which("readelf") is None,
    reason="needs a C compiler and binutils",
)
ARCH = next(arch for arch, machine in ARCHES.items() if machine == platform.machine())
NATIVE = Toolchain(ARCH, platform.machine(), shutil.which("strip"), sys.executable, emulated=False)
# arm64 on this machine: Debian's aarch64 binutils and trixie's arm64 python3.13 under qemu (bootstrap).
ARM64 = find_toolchain(RUNTIMES["python3.13"], "arm64")
# arm64 python3.12: no interpreter of that version anywhere here, so the sysroot's dynamic loader checks.
ARM64_312 = find_toolchain(RUNTIMES["python3.12"], "arm64")

# A library that refuses to run once its symbol table is gone, as scipy's bundled OpenBLAS does
# once stripped (there "ELF load command address/offset not page-aligned"): its constructor reads
# its own file and aborts the process when the section name ".symtab" is no longer in it.
FRAGILE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int fragile_value(void) { return 42; }
__attribute__((constructor)) static void check_self(void) {
    Dl_info info;
    dladdr((void *)fragile_value, &info);
    FILE *f = fopen(info.dli_fname, "rb");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    volatile char name[] = ".symtaX";  /* not ".symtab" itself, or the literal would be found */
    name[6] = 'b';
    for (size_t i = 0; i + 7 <= n; i++)
        if (memcmp(buf + i, (const char *)name, 7) == 0) return;
    abort();
}
"""
USER = "int fragile_value(void);\nint user_value(void) { return fragile_value() + 1; }\n"


def compile_library(source: str, out: Path, *extra: str) -> None:
    c_file = out.with_suffix(".c")
    c_file.write_text(source)
    subprocess.run(["cc", "-g", "-shared", "-fPIC", "-o", str(out), str(c_file), *extra], check=True)
    c_file.unlink()


def has_symtab(path: Path) -> bool:
    return b".symtab" in path.read_bytes()


def test_a_library_with_a_runpath_is_stripped_and_one_that_breaks_is_restored_alone(tmp_path: Path) -> None:
    libs = tmp_path / "site" / "pkg.libs"
    libs.mkdir(parents=True)
    fragile = libs / "libfragile.so"
    compile_library(FRAGILE, fragile, "-Wl,-soname,libfragile.so")
    original = fragile.read_bytes()
    # The user links the fragile one through a RUNPATH, as auditwheel's patchelf leaves it.
    user = libs / "libuser.so"
    compile_library(USER, user, f"-L{libs}", "-lfragile", "-Wl,--enable-new-dtags,-rpath,$ORIGIN")
    assert "(RUNPATH)" in subprocess.run(["readelf", "-d", str(user)], capture_output=True, text=True).stdout
    assert has_symtab(user)

    step = strip_shared_objects(tmp_path / "site", NATIVE)

    assert not has_symtab(user)  # stripped, though it has a RUNPATH and its dependency broke
    assert fragile.read_bytes() == original  # restored as installed
    assert step.bytes_removed > 0
    assert step.notes[0] == "1 stripped"
    assert "kept unstripped pkg.libs/libfragile.so" in step.notes[1]
    assert step.warnings == ()


def test_a_linker_script_named_so_is_not_elf(tmp_path: Path) -> None:
    fake = tmp_path / "libfake.so"
    fake.write_text("INPUT(-lc)\n")
    assert not is_elf(fake)


def test_a_library_that_does_not_load_as_installed_is_not_blamed_on_the_strip(tmp_path: Path) -> None:
    libs = tmp_path / "site" / "pkg.libs"
    libs.mkdir(parents=True)
    gone = libs / "libgone.so"
    compile_library("int gone_value(void) { return 1; }\n", gone, "-Wl,-soname,libgone.so")
    plugin = libs / "libplugin.so"
    compile_library("int gone_value(void);\nint plugin(void) { return gone_value(); }\n", plugin, f"-L{libs}", "-lgone")
    gone.unlink()  # what it links to is not in the layer: a plugin for a library Lambda lacks
    original = plugin.read_bytes()

    step = strip_shared_objects(tmp_path / "site", NATIVE)

    assert plugin.read_bytes() == original
    assert step.notes[0] == "0 stripped"
    assert step.notes[1].startswith("kept unstripped pkg.libs/libplugin.so (0.0 MB): it does not load as installed")
    assert "libgone.so" in step.notes[1]


AARCH64_FUNCTION = ".text\n.global answer\n.type answer, %function\nanswer:\n    mov w0, #42\n    ret\n"


def assemble_aarch64(out: Path, *link: str, code: str = AARCH64_FUNCTION) -> None:
    """A real aarch64 shared object, built with Debian's aarch64 binutils (no cross compiler needed)."""
    source, obj = out.with_suffix(".s"), out.with_suffix(".o")
    source.write_text(code)
    subprocess.run(["aarch64-linux-gnu-as", "-o", str(obj), str(source)], check=True)
    subprocess.run(
        ["aarch64-linux-gnu-ld", "-shared", f"-soname={out.name}", "-o", str(out), str(obj), *link], check=True
    )
    source.unlink()
    obj.unlink()


needs_arm64 = pytest.mark.skipif(
    ARM64.python is None or ARM64.strip is None or shutil.which("aarch64-linux-gnu-as") is None,
    reason=f"needs the arm64 toolchain of scripts/bootstrap.py: {'; '.join(ARM64.missing)}",
)


@needs_arm64
def test_arm64_objects_are_stripped_with_aarch64_binutils_and_load_checked_under_qemu(tmp_path: Path) -> None:
    libs = tmp_path / "site" / "pkg.libs"
    libs.mkdir(parents=True)
    fine = libs / "libanswer.so"
    assemble_aarch64(fine)
    # One that links to a library the layer lacks: it cannot load as installed, so it is kept as it is.
    gone = libs / "libgone.so"
    assemble_aarch64(gone)
    plugin = libs / "libplugin.so"
    assemble_aarch64(plugin, f"-L{libs}", "-lgone")
    gone.unlink()
    assert elf_machine(fine) == "aarch64" and has_symbol_table(fine) and has_symbol_table(plugin)

    step = strip_shared_objects(tmp_path / "site", ARM64)

    # A host interpreter could load neither: "1 stripped" means qemu's arm64 python loaded it stripped.
    assert step.notes[0] == "1 stripped"
    assert not has_symbol_table(fine)
    assert has_symbol_table(plugin)
    assert step.notes[1].startswith("kept unstripped pkg.libs/libplugin.so")
    assert "it does not load as installed either: OSError: libgone.so: cannot open" in step.notes[1]
    # aarch64 ld pads to 64 KiB pages: re-laid out, it still loaded in qemu's arm64 python.
    assert step.notes[2].startswith("1 re-laid out to 4 KiB pages")
    assert fine.stat().st_size < 65536
    assert step.warnings == ()


def test_without_the_target_tools_nothing_is_stripped_and_the_step_says_which_is_missing(tmp_path: Path) -> None:
    lib = tmp_path / "site" / "libx.so"
    lib.parent.mkdir()
    compile_library("int x(void) { return 1; }\n", lib)
    original = lib.read_bytes()
    toolchain = Toolchain("arm64", "aarch64", "aarch64-linux-gnu-strip", None, True, ("no arm64 Python 3.12 here",))
    step = strip_shared_objects(tmp_path / "site", toolchain)
    assert step.warnings == ("not stripped: no arm64 Python 3.12 here",)
    assert lib.read_bytes() == original


def test_a_shared_object_for_another_machine_fails_the_layer(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "pkg").mkdir(parents=True)
    compile_library("int x(void) { return 1; }\n", site / "pkg" / "_native.so")  # built for this machine
    other = next(arch for arch in ARCHES if arch != ARCH)
    toolchain = Toolchain(other, ARCHES[other], None, None, emulated=True)
    with pytest.raises(VerifyError) as error:
        check_target_machine(site, toolchain, "core")
    assert f"Layer core is for {other} ({ARCHES[other]}), but 1 of its shared objects" in str(error.value)
    assert f"pkg/_native.so ({platform.machine()})" in str(error.value)
    check_target_machine(site, NATIVE, "core")  # the right machine: no complaint


# A library that needs its 64 KiB page padding: its constructor aborts the process when its own
# file is shorter than 64 KiB, which only the re-laid-out form is (a stand-in for any object the
# re-layout would break, caught by the same load check as a broken strip).
NEEDS_PADDING = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/stat.h>
int padded_value(void) { return 42; }
__attribute__((constructor)) static void check_size(void) {
    Dl_info info;
    struct stat st;
    dladdr((void *)padded_value, &info);
    if (stat(info.dli_fname, &st) != 0 || st.st_size < 65536) abort();
}
"""
PADDED = "-Wl,-z,max-page-size=0x10000"


def test_objects_linked_for_64k_pages_are_re_laid_out_and_one_that_no_longer_loads_stays_stripped(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site" / "pkg"
    site.mkdir(parents=True)
    fine = site / "_fine.so"
    compile_library("int fine_value(void) { return 1; }\n", fine, PADDED)
    needs = site / "_needs_padding.so"
    compile_library(NEEDS_PADDING, needs, PADDED)
    stripped_only = tmp_path / "stripped.so"
    shutil.copy2(needs, stripped_only)
    subprocess.run(["strip", "--strip-unneeded", str(stripped_only)], check=True)

    step = strip_shared_objects(tmp_path / "site", NATIVE)

    assert step.notes[0] == "2 stripped"
    assert step.notes[1].startswith("1 re-laid out to 4 KiB pages, 0.")
    assert step.notes[2].startswith("kept at its 64 KiB page layout pkg/_needs_padding.so: it no longer loaded")
    assert needs.read_bytes() == stripped_only.read_bytes()  # back to its stripped form, not the original
    assert fine.stat().st_size < 65536 and not load_problems(fine.read_bytes())
    assert step.bytes_removed > 2 * 65536  # the strip's saving and the padding's


def test_with_relayout_off_the_padding_stays(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    lib = site / "_fine.so"
    compile_library("int fine_value(void) { return 1; }\n", lib, PADDED)
    step = strip_shared_objects(site, NATIVE, relayout_pages=False)
    assert step.notes[1] == "not re-laid out to 4 KiB pages ([build] relayout_shared_objects = false)"
    assert lib.stat().st_size > 65536


# What the aarch64 loader prints for an extension module (LD_TRACE_LOADED_OBJECTS, LD_BIND_NOW, LD_WARN).
TRACED = "\tlibc.so.6 => /lib/aarch64-linux-gnu/libc.so.6 (0x00000055028a0000)\n"
MODULE = "_sosfilt.cpython-312-aarch64-linux-gnu.so"
UNBOUND = f"undefined symbol: PyExc_ValueError\t(./{MODULE})\nundefined symbol: _Py_FalseStruct\t(./{MODULE})\n"


def test_an_extension_modules_own_unbound_py_symbols_are_no_regression() -> None:
    before = LoaderTrace.parse(0, TRACED, UNBOUND)
    assert loader_regression(before, LoaderTrace.parse(0, TRACED, UNBOUND)) is None
    assert loader_refusal(before) is None  # unbound Py* symbols: the interpreter provides them


def test_an_object_the_loader_no_longer_maps_or_binds_is_a_regression() -> None:
    before = LoaderTrace.parse(0, TRACED, UNBOUND)
    broken = LoaderTrace.parse(
        127,
        "",
        f"./{MODULE}: error while loading shared libraries: ./{MODULE}: "
        "ELF load command address/offset not page-aligned\n",
    )
    assert loader_regression(before, broken) == (
        f"the dynamic loader no longer maps it (exit 127): ./{MODULE}: error while loading shared libraries: "
        f"./{MODULE}: ELF load command address/offset not page-aligned"
    )
    unbound = LoaderTrace.parse(0, TRACED, UNBOUND + f"undefined symbol: cblas_dgemm\t(./{MODULE})\n")
    assert loader_regression(before, unbound) == (
        f"the dynamic loader reports what it did not before: undefined symbol: cblas_dgemm\t(./{MODULE})"
    )
    lost = LoaderTrace.parse(0, TRACED + "\tlibgfortran-e1b7dfc8.so.5.0.0 => not found\n", UNBOUND)
    assert loader_regression(before, lost) == (
        "the dynamic loader reports what it did not before: libgfortran-e1b7dfc8.so.5.0.0 => not found"
    )
    assert loader_refusal(lost) == "the dynamic loader does not find libgfortran-e1b7dfc8.so.5.0.0 => not found"


def test_an_object_that_never_mapped_is_no_regression_but_is_refused_as_installed() -> None:
    refused = LoaderTrace.parse(127, "", "x.so: error while loading shared libraries: x.so: bad ELF\n")
    assert loader_regression(refused, refused) is None
    assert (
        loader_refusal(refused)
        == "the dynamic loader does not map it (exit 127): x.so: error while loading shared libraries: x.so: bad ELF"
    )


# Moves the first PT_LOAD's file offset off its address modulo any page size, as a broken strip or
# patchelf leaves scipy's OpenBLAS: the loader's mmap then refuses it. A script: a strip runs it too.
MISALIGN = """
import sys
from pathlib import Path
from lambda_ml_layers.build.elf_layout import EHDR, PHDR, PT_LOAD
path = Path(sys.argv[1])
data = bytearray(path.read_bytes())
header = EHDR.unpack_from(data)
phoff, phentsize, phnum = header[5], header[9], header[10]
for at in range(phoff, phoff + phnum * phentsize, phentsize):
    fields = list(PHDR.unpack_from(data, at))
    if fields[0] == PT_LOAD:
        fields[2] += 16  # p_offset
        PHDR.pack_into(data, at, *fields)
        break
path.write_bytes(bytes(data))
"""
REPO = Path(__file__).resolve().parents[2]


def misalign_first_load(path: Path) -> None:
    subprocess.run([sys.executable, "-c", MISALIGN, str(path)], check=True, cwd=REPO)


needs_arm64_loader = pytest.mark.skipif(
    not ARM64_312.loader or shutil.which("aarch64-linux-gnu-as") is None,
    reason=f"needs the arm64 sysroot and qemu of scripts/bootstrap.py: {'; '.join(ARM64_312.missing)}",
)


@needs_arm64_loader
def test_the_arm64_loader_under_qemu_fails_a_misaligned_object_and_passes_a_stripped_one(tmp_path: Path) -> None:
    good, bad = tmp_path / "libgood.so", tmp_path / "libbad.so"
    assemble_aarch64(good)
    assemble_aarch64(bad)
    check = loader_check(ARM64_312.loader, [good, bad])
    subprocess.run(["aarch64-linux-gnu-strip", "--strip-unneeded", str(good)], check=True)
    misalign_first_load(bad)

    failed = check.changed([good, bad], tmp_path)

    assert list(failed) == [bad]
    assert failed[bad].startswith("the dynamic loader no longer maps it (exit 127)")
    assert "ELF load command address/offset not " in failed[bad]
    assert check.as_installed([good], tmp_path) == {}
    assert check.as_installed([bad], tmp_path) == {bad: failed[bad].replace("no longer maps", "does not map")}


@needs_arm64_loader
def test_without_an_arm64_python_312_the_strip_step_load_checks_with_the_loader(tmp_path: Path) -> None:
    assert ARM64_312.python is None and ARM64_312.strip is not None
    libs = tmp_path / "site" / "pkg.libs"
    libs.mkdir(parents=True)
    fine = libs / "libanswer.so"
    assemble_aarch64(fine)
    # An extension module's Py* symbols come from the interpreter: unbound here before and after.
    module = libs / "_module.so"
    assemble_aarch64(module, code=AARCH64_FUNCTION + ".global raise_it\nraise_it:\n    b PyErr_SetString\n")
    assert f"undefined symbol: PyErr_SetString\t({module})" in trace_with_loader(ARM64_312.loader, module).problems

    step = strip_shared_objects(tmp_path / "site", ARM64_312)

    assert step.notes[0] == "2 stripped"
    assert not has_symbol_table(fine) and not has_symbol_table(module)
    assert step.notes[1].startswith("load-checked with the arm64 dynamic loader (")
    assert "no arm64 Python 3.12" in step.notes[1] and "no import can be verified" in step.notes[1]
    assert step.notes[2].startswith("2 re-laid out to 4 KiB pages")
    assert step.warnings == ()


@needs_arm64_loader
def test_the_loader_check_restores_what_a_strip_broke_and_strips_its_user_alone(tmp_path: Path) -> None:
    # A strip that leaves libbroken.so as GNU strip leaves scipy's OpenBLAS: its PT_LOAD off its page.
    (tmp_path / "misalign.py").write_text(MISALIGN)
    breaker = tmp_path / "strip"
    breaker.write_text(
        '#!/bin/sh\naarch64-linux-gnu-strip "$@" || exit $?\n'
        f'case "$2" in *libbroken.so) PYTHONPATH="{REPO}" exec "{sys.executable}" "{tmp_path}/misalign.py" "$2"'
        ";; esac\n"
    )
    breaker.chmod(0o755)
    libs = tmp_path / "site" / "pkg.libs"
    libs.mkdir(parents=True)
    broken = libs / "libbroken.so"
    assemble_aarch64(broken)
    original = broken.read_bytes()
    user = libs / "libuser.so"
    assemble_aarch64(user, f"-L{libs}", "-lbroken", "-rpath=$ORIGIN", code=AARCH64_FUNCTION.replace("answer", "ask"))
    toolchain = Toolchain("arm64", "aarch64", str(breaker), None, True, ARM64_312.missing, ARM64_312.loader)

    step = strip_shared_objects(tmp_path / "site", toolchain, relayout_pages=False)

    assert broken.read_bytes() == original  # restored as installed
    assert not has_symbol_table(user)  # it failed beside the broken one, then passed alone
    assert step.notes[0] == "1 stripped"
    assert step.notes[2].startswith(
        "kept unstripped pkg.libs/libbroken.so (0.1 MB): it no longer loaded once stripped: "
    )
    assert "the dynamic loader no longer maps it (exit 127)" in step.notes[2]


@needs_arm64_loader
def test_the_loader_changes_python_312s_cache_key_only() -> None:
    assert ARM64_312.describe().endswith("/ld-linux-aarch64.so.1") and " loader=" in ARM64_312.describe()
    assert "loader" not in ARM64.describe()  # 3.13 has its interpreter: its builds are unchanged
