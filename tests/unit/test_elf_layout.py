"""Re-laying out shared objects for 4 KiB pages: on a minimal ELF built here byte by byte, and on a
real library compiled with 64 KiB page padding, loaded before and after and compared in memory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.build.elf_layout import EHDR, PHDR, SHDR, load_problems, relayout

PT_LOAD, PT_DYNAMIC, SHT_PROGBITS, SHT_NOBITS, SHF_ALLOC = 1, 2, 1, 8, 2
# (offset, vaddr, filesz, memsz): manylinux aarch64's layout, each load after the first at 64 KiB.
LOADS = [(0, 0, 0x200, 0x200), (0x10000, 0x10000, 0x100, 0x100), (0x20E00, 0x30E00, 0x80, 0x100)]
DYNAMIC = (0x20E10, 0x30E10, 0x20)
# (kind, flags, addr, offset, size): .text, .data, .bss, then the non-allocated .comment after the loads.
SECTIONS = [
    (0, 0, 0, 0, 0),
    (SHT_PROGBITS, SHF_ALLOC, 0x10000, 0x10000, 0x100),
    (SHT_PROGBITS, SHF_ALLOC, 0x30E00, 0x20E00, 0x80),
    (SHT_NOBITS, SHF_ALLOC, 0x30E80, 0x20E80, 0x80),
    (SHT_PROGBITS, 0, 0, 0x20E80, 0x10),
]
SHOFF = 0x20E90


def synthetic_elf(
    loads: list[tuple[int, int, int, int]] = LOADS,
    sections: list[tuple[int, int, int, int, int]] = SECTIONS,
    shoff: int = SHOFF,
    elf_class: int = 2,
) -> bytes:
    """A 64-bit little-endian shared object: headers, each load filled with non-zero bytes, zero padding."""
    phdrs = [(PT_LOAD, 4, offset, vaddr, vaddr, filesz, memsz, 0x10000) for offset, vaddr, filesz, memsz in loads]
    phdrs.append((PT_DYNAMIC, 6, DYNAMIC[0], DYNAMIC[1], DYNAMIC[1], DYNAMIC[2], DYNAMIC[2], 8))
    size = max(shoff + len(sections) * SHDR.size, *(o + f for o, _, f, _ in loads))
    data = bytearray(size)
    for index, (offset, _, filesz, _) in enumerate(loads):
        data[offset : offset + filesz] = bytes((index * 37 + i) % 255 + 1 for i in range(filesz))
    data[0x20E80:0x20E90] = b"GCC: (test) 1.0\0"  # .comment
    ident = b"\x7fELF" + bytes([elf_class, 1, 1]) + bytes(9)
    EHDR.pack_into(
        data, 0, ident, 3, 183, 1, 0, EHDR.size, shoff, 0, EHDR.size, PHDR.size, len(phdrs), SHDR.size, len(sections), 0
    )
    for index, phdr in enumerate(phdrs):
        PHDR.pack_into(data, EHDR.size + index * PHDR.size, *phdr)
    for index, (kind, flags, addr, offset, sh_size) in enumerate(sections):
        SHDR.pack_into(data, shoff + index * SHDR.size, 0, kind, flags, addr, offset, sh_size, 0, 0, 8, 0)
    return bytes(data)


def headers(data: bytes) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...], int]:
    """(program headers, section headers, e_shoff) of a file."""
    _, _, _, _, _, phoff, shoff, _, _, _, phnum, _, shnum, _ = EHDR.unpack_from(data)
    phdrs = tuple(PHDR.unpack_from(data, phoff + i * PHDR.size) for i in range(phnum))
    shdrs = tuple(SHDR.unpack_from(data, shoff + i * SHDR.size) for i in range(shnum))
    return phdrs, shdrs, shoff


def test_each_load_moves_to_the_first_offset_congruent_to_its_address_and_takes_its_contents_along() -> None:
    original = synthetic_elf()
    result = relayout(original)
    assert result.data is not None, result.reason
    phdrs, shdrs, shoff = headers(result.data)
    # 0x200 bytes, then .text at 0x1000 (≡ 0x10000), then .data at 0x1e00 (≡ 0x30e00 mod 4096).
    assert [(p[2], p[3], p[7]) for p in phdrs if p[0] == PT_LOAD] == [
        (0, 0, 0x1000),
        (0x1000, 0x10000, 0x1000),
        (0x1E00, 0x30E00, 0x1000),
    ]
    assert [(p[2], p[3], p[7]) for p in phdrs if p[0] == PT_DYNAMIC] == [(0x1E10, 0x30E10, 8)]  # moved with its load
    assert [s[4] for s in shdrs] == [0, 0x1000, 0x1E00, 0x1E80, 0x1E80]  # .text, .data, .bss, .comment
    assert shoff == SHOFF - 0x1F000
    assert result.saved == len(original) - len(result.data) == 0x1F000
    old_phdrs, old_shdrs, _ = headers(original)
    for old, new in zip(old_phdrs, phdrs, strict=True):
        assert original[old[2] : old[2] + old[5]][0x200:] == result.data[new[2] : new[2] + new[5]][0x200:]
    for old, new in zip(old_shdrs[1:], shdrs[1:], strict=True):
        if old[1] != SHT_NOBITS:
            assert original[old[4] : old[4] + old[5]] == result.data[new[4] : new[4] + new[5]]
    assert load_problems(result.data) == []


def test_a_file_already_laid_out_for_4k_pages_is_left_alone() -> None:
    once = relayout(synthetic_elf()).data
    assert once is not None
    again = relayout(once)
    assert again.data is None
    assert again.reason == "already laid out for 4 KiB pages (nothing to save)"


def test_non_zero_bytes_in_the_padding_are_kept_and_only_zeros_after_them_removed() -> None:
    original = bytearray(synthetic_elf())
    original[0x1F000:0x1F004] = b"junk"  # left between loads by a tool (patchelf leaves old copies)
    result = relayout(bytes(original))
    assert result.data is not None, result.reason
    assert b"junk" in result.data
    phdrs, _, _ = headers(result.data)
    # The third load now follows the kept bytes: the first offset ≥ their new end ≡ 0x30e00.
    junk_at = result.data.index(b"junk")
    third = [p[2] for p in phdrs if p[0] == PT_LOAD][2]
    assert junk_at < third < junk_at + 4 + 0x1000 and third % 0x1000 == 0xE00
    assert load_problems(result.data) == []


def test_a_section_reaching_from_the_padding_into_a_load_is_refused() -> None:
    sections = [*SECTIONS, (SHT_PROGBITS, 0, 0, 0x20D00, 0x200)]  # ends inside the third load
    result = relayout(synthetic_elf(sections=sections))
    assert result.data is None
    assert result.reason == "section 5 runs from the padding into the next PT_LOAD"


def test_overlapping_loads_and_a_mapped_section_header_table_and_32_bit_files_are_refused() -> None:
    overlapping = [LOADS[0], (0x10000, 0x10000, 0x11000, 0x11000), LOADS[2]]
    assert relayout(synthetic_elf(loads=overlapping)).reason == "PT_LOAD 2 overlaps or precedes PT_LOAD 1"
    inside = [LOADS[0], LOADS[1], (0x20E00, 0x30E00, 0x200, 0x200)]  # the table at 0x20e90 is mapped
    assert relayout(synthetic_elf(loads=inside)).reason == "the section header table lies inside PT_LOAD 2"
    assert relayout(synthetic_elf(elf_class=1)).reason == "not a 64-bit little-endian ELF file"
    assert relayout(b"INPUT(-lc)\n").reason == "not an ELF file"


def test_a_load_whose_offset_and_address_differ_modulo_4k_is_a_load_problem() -> None:
    loads = [LOADS[0], LOADS[1], (0x20E00, 0x30E40, 0x80, 0x100)]
    broken = synthetic_elf(loads=loads)
    assert load_problems(broken) == ["PT_LOAD 2: p_offset 0x20e00 and p_vaddr 0x30e40 differ modulo 0x1000"]
    assert relayout(broken).reason == "PT_LOAD 2 is not page-consistent for 4 KiB pages as it is"
    assert load_problems(synthetic_elf()) == []


LIBRARY = r"""
const char table[4096] = "a constant table the re-layout must not move in memory";
int counter = 7;
static int zeros[64];
int answer(void) { return 41 + (table[0] == 'a') + zeros[3] + counter - 7; }
"""
# Loads a library and prints a digest of each load's memory, the headers aside, with each word that
# points into the library (relocated at load time) made relative to where it was loaded: glibc places
# a library aligned to its largest p_align, so the two layouts load at different addresses.
DUMP = r"""
import ctypes, hashlib, json, struct, sys
path = sys.argv[1]
lib = ctypes.CDLL(path)
base = min(int(line.split("-")[0], 16) for line in open("/proc/self/maps") if line.rstrip().endswith(path))
data = open(path, "rb").read()
phoff, = struct.unpack_from("<Q", data, 0x20)
phnum, = struct.unpack_from("<H", data, 0x38)
loads = []
for i in range(phnum):
    kind, _, offset, vaddr, _, filesz, memsz, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + i * 56)
    if kind == 1:
        loads.append((vaddr, memsz))
span = max(vaddr + memsz for vaddr, memsz in loads)
images = []
for vaddr, memsz in loads:
    image = ctypes.string_at(base + vaddr, memsz)
    if vaddr == 0:
        image = image[64 + phnum * 56:]  # the ELF and program headers: their file offsets change
    whole = len(image) // 8 * 8
    words = [w - base if base <= w < base + span else w for w in struct.unpack(f"<{whole // 8}Q", image[:whole])]
    image = struct.pack(f"<{len(words)}Q", *words) + image[whole:]
    images.append([vaddr, memsz, hashlib.sha256(image).hexdigest()])
print(json.dumps({"answer": lib.answer(), "images": images}))
"""


@pytest.mark.skipif(shutil.which("cc") is None or shutil.which("setarch") is None, reason="needs cc and setarch")
def test_a_real_library_linked_for_64k_pages_loads_re_laid_out_with_the_same_memory_image(tmp_path: Path) -> None:
    source = tmp_path / "lib.c"
    source.write_text(LIBRARY)
    padded = tmp_path / "padded" / "libanswer.so"
    padded.parent.mkdir()
    subprocess.run(
        ["cc", "-O1", "-shared", "-fPIC", "-Wl,-z,max-page-size=0x10000", "-o", str(padded), str(source)], check=True
    )
    result = relayout(padded.read_bytes())
    assert result.data is not None, result.reason
    assert result.saved > 0x10000  # at least one 64 KiB boundary's padding
    relaid = tmp_path / "relaid" / "libanswer.so"
    relaid.parent.mkdir()
    relaid.write_bytes(result.data)

    def dump(path: Path) -> dict[str, object]:
        # No address randomisation: what the library's GOT points to in libc is then the same too.
        command = ["setarch", "-R", sys.executable, "-c", DUMP, str(path)]
        loaded: dict[str, object] = json.loads(
            subprocess.run(command, capture_output=True, text=True, check=True).stdout
        )
        return loaded

    before, after = dump(padded), dump(relaid)
    assert after["answer"] == before["answer"] == 42
    assert after["images"] == before["images"]
