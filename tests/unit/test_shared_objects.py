"""Stripping shared objects, on real ELF files compiled here: libraries with a RUNPATH are stripped
too, and one that no longer loads once stripped is restored without costing its users their strip."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.build.shared_objects import is_elf, strip_shared_objects
from lambda_ml_layers.core.runtimes import ARCHES

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None or shutil.which("strip") is None or shutil.which("readelf") is None,
    reason="needs a C compiler and binutils",
)
ARCH = next(arch for arch, machine in ARCHES.items() if machine == platform.machine())

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

    step = strip_shared_objects(tmp_path / "site", sys.executable, ARCH)

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

    step = strip_shared_objects(tmp_path / "site", sys.executable, ARCH)

    assert plugin.read_bytes() == original
    assert step.notes[0] == "0 stripped"
    assert step.notes[1].startswith("kept unstripped pkg.libs/libplugin.so (0.0 MB): it does not load as installed")
    assert "libgone.so" in step.notes[1]
