"""The published-zip check: every shared object is for the zip's machine and stripped, bar the
ones the build kept unstripped and said why."""

from __future__ import annotations

import platform
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from lambda_ml_layers.checks.zip_binaries import binary_problems, kept_on_purpose

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None or shutil.which("strip") is None, reason="needs a C compiler and binutils"
)
HOST = platform.machine()


def library(site: Path, rel: str, stripped: bool) -> None:
    path = site / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    source = path.with_suffix(".c")
    source.write_text("int f(void) { return 1; }\n")
    subprocess.run(["cc", "-g", "-shared", "-fPIC", "-o", str(path), str(source)], check=True)
    source.unlink()
    if stripped:
        subprocess.run(["strip", "--strip-unneeded", str(path)], check=True)


def test_unstripped_objects_fail_unless_the_build_kept_them_on_purpose(tmp_path: Path) -> None:
    library(tmp_path, "pkg/_done.so", stripped=True)
    library(tmp_path, "pkg/_missed.so", stripped=False)
    library(tmp_path, "pkg.libs/libkept.so", stripped=False)
    (tmp_path / "pkg" / "libscript.so").write_text("INPUT(-lc)\n")  # a linker script: not ELF, not checked
    report = {
        "steps": [
            {"step": "shared-objects", "notes": ["2 stripped", "kept unstripped pkg.libs/libkept.so (0.0 MB): it no"]}
        ]
    }
    kept = kept_on_purpose(report)
    assert kept == {"pkg.libs/libkept.so"}
    assert binary_problems(tmp_path, HOST, kept) == [
        "pkg/_missed.so: not stripped (it still has its .symtab), and the build did not say why"
    ]


@pytest.mark.parametrize("stripped", [True, False])
def test_an_object_for_another_machine_fails_stripped_or_not(tmp_path: Path, stripped: bool) -> None:
    """Named once, for its machine: the build's own foreign-object test (shared_objects.foreign_objects)."""
    library(tmp_path, "pkg/_native.so", stripped=stripped)
    other = "aarch64" if HOST != "aarch64" else "x86_64"
    assert binary_problems(tmp_path, other, set()) == [f"pkg/_native.so: built for {HOST}, not {other}"]


def test_an_object_whose_load_offset_and_address_disagree_modulo_4k_fails(tmp_path: Path) -> None:
    library(tmp_path, "pkg/_fine.so", stripped=True)
    library(tmp_path, "pkg/_broken.so", stripped=True)
    broken = tmp_path / "pkg" / "_broken.so"
    data = bytearray(broken.read_bytes())
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    (phnum,) = struct.unpack_from("<H", data, 0x38)
    loads = [phoff + i * 56 for i in range(phnum) if struct.unpack_from("<I", data, phoff + i * 56)[0] == 1]
    # What a careless ELF editor leaves: the second load's offset moved without its address.
    (offset,) = struct.unpack_from("<Q", data, loads[1] + 8)
    struct.pack_into("<Q", data, loads[1] + 8, offset + 0x10)
    broken.write_bytes(bytes(data))
    assert binary_problems(tmp_path, HOST, set()) == [
        f"pkg/_broken.so: would not load with 4 KiB pages: PT_LOAD {(loads[1] - phoff) // 56}: p_offset "
        f"{offset + 0x10:#x} and p_vaddr {struct.unpack_from('<Q', data, loads[1] + 16)[0]:#x} differ modulo 0x1000"
    ]
