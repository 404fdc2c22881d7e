"""Re-lay out an ELF64 little-endian shared object for 4 KiB pages: the 64 KiB padding between its
loadable segments removed, its memory image unchanged.

manylinux aarch64 wheels are linked with `-z max-page-size=0x10000`, so the linker starts every
PT_LOAD after the first at a file offset padded with zeros to a 64 KiB boundary (so the file still
maps on kernels with 64 KiB pages). The loader only needs `p_offset ≡ p_vaddr (mod page size)`:
with 4 KiB pages, each segment can start at the first offset after the previous one that is
congruent to its address modulo 4096, which is what `-z max-page-size=0x1000` would have linked.
Addresses, sizes and every byte of every segment and section stay as they were; only file offsets
(program headers, section headers, e_phoff, e_shoff) move, by the padding removed before them.

ASSUMPTION: the file then loads only where the page size is 4 KiB. glibc refuses a PT_LOAD whose
(p_vaddr - p_offset) is not a multiple of the page size or whose p_align is not ("ELF load command
address/offset not page-aligned"). Lambda's x86_64 and arm64 (Graviton) environments use 4 KiB pages;
a kernel with 16 or 64 KiB pages would refuse these files. The build loads each re-laid-out object
(under qemu for arm64, which uses the host's 4 KiB pages), and a real stage's post-deploy smoke run
imports every layer's modules on Lambda itself, so a wrong assumption fails the deploy and rolls it
back rather than shipping.

Left alone (None, with the reason), never half-edited: anything but a 64-bit little-endian ELF
shared object, nothing to save, removed padding that holds a non-zero byte or any part of a section,
segments that overlap or are out of order, or anything else this module does not understand.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from itertools import pairwise

PAGE = 4096
PT_LOAD = 1
SHT_NOBITS = 8
SHF_ALLOC = 0x2
ET_DYN = 3
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
SHDR = struct.Struct("<IIQQQQIIQQ")


@dataclass(frozen=True)
class Segment:
    index: int  # in the program header table
    kind: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int

    @property
    def end(self) -> int:
        return self.offset + self.filesz


@dataclass(frozen=True)
class SectionHeader:
    index: int
    kind: int
    flags: int
    addr: int
    offset: int
    size: int

    @property
    def in_file(self) -> bool:
        return self.kind != SHT_NOBITS and self.size > 0


@dataclass(frozen=True)
class Relayout:
    """The re-laid-out file (`data`), or None and why it was left alone (`reason`)."""

    data: bytes | None
    reason: str = ""
    saved: int = 0  # bytes


@dataclass(frozen=True)
class _Elf:
    phoff: int
    phnum: int
    shoff: int
    shnum: int
    segments: tuple[Segment, ...]
    sections: tuple[SectionHeader, ...]

    @property
    def loads(self) -> list[Segment]:
        return [s for s in self.segments if s.kind == PT_LOAD]


class _LeftAlone(Exception):
    pass


def _parse(data: bytes) -> _Elf:
    if data[:4] != b"\x7fELF":
        raise _LeftAlone("not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise _LeftAlone("not a 64-bit little-endian ELF file")
    if len(data) < EHDR.size:
        raise _LeftAlone("truncated ELF header")
    (_, e_type, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, _) = EHDR.unpack_from(data)
    if e_type != ET_DYN:
        raise _LeftAlone(f"not a shared object (e_type {e_type})")
    if phentsize != PHDR.size or phnum == 0 or phoff + phnum * PHDR.size > len(data):
        raise _LeftAlone("no readable program header table")
    if shentsize != SHDR.size or shnum == 0 or shoff + shnum * SHDR.size > len(data):
        raise _LeftAlone("no readable section header table")
    segments = []
    for index in range(phnum):
        kind, _, offset, vaddr, _, filesz, memsz, align = PHDR.unpack_from(data, phoff + index * PHDR.size)
        if offset + filesz > len(data):
            raise _LeftAlone(f"program header {index} reaches past the end of the file")
        segments.append(Segment(index, kind, offset, vaddr, filesz, memsz, align))
    sections = []
    for index in range(shnum):
        _, kind, flags, addr, offset, size, _, _, _, _ = SHDR.unpack_from(data, shoff + index * SHDR.size)
        if kind != SHT_NOBITS and offset + size > len(data):
            raise _LeftAlone(f"section {index} reaches past the end of the file")
        sections.append(SectionHeader(index, kind, flags, addr, offset, size))
    return _Elf(phoff, phnum, shoff, shnum, tuple(segments), tuple(sections))


def load_problems(data: bytes, page: int = PAGE) -> list[str]:
    """Why the loader would refuse this file's PT_LOADs with `page`-byte pages (empty: it would not).
    The same two tests glibc makes; not an ELF64 LE file: nothing to say."""
    try:
        elf = _parse(data)
    except _LeftAlone:
        return []
    problems = []
    for load in elf.loads:
        if load.align % page:
            problems.append(f"PT_LOAD {load.index}: p_align {load.align:#x} is not a multiple of {page:#x}")
        if (load.vaddr - load.offset) % page:
            problems.append(
                f"PT_LOAD {load.index}: p_offset {load.offset:#x} and p_vaddr {load.vaddr:#x} differ modulo {page:#x}"
            )
    return problems


@dataclass(frozen=True)
class _Block:
    """A load's file bytes and what follows them up to the padding removed after it: non-zero bytes
    and non-allocated sections (patchelf leaves .symtab, .shstrtab and the section headers between
    loads), which move with the load. For the last load: everything to the end of the file."""

    load: Segment
    end: int  # old offset where the removed padding after it starts
    new_offset: int

    @property
    def delta(self) -> int:
        return self.load.offset - self.new_offset

    def holds(self, start: int, size: int) -> bool:
        return self.load.offset <= start < self.end or (size == 0 and start == self.end)


def _check_loads(loads: list[Segment]) -> None:
    for load in loads:
        if (load.vaddr - load.offset) % PAGE:
            raise _LeftAlone(f"PT_LOAD {load.index} is not page-consistent for 4 KiB pages as it is")
        if load.align < PAGE or load.align % PAGE:
            raise _LeftAlone(f"PT_LOAD {load.index} has p_align {load.align:#x}, not a multiple of 4 KiB")
    for previous, load in pairwise(loads):
        if load.offset < previous.end or load.vaddr < previous.vaddr + previous.memsz:
            raise _LeftAlone(f"PT_LOAD {load.index} overlaps or precedes PT_LOAD {previous.index}")


def _kept_end(data: bytes, start: int, stop: int, ranges: list[tuple[int, int, str]]) -> int:
    """Where the removable padding in data[start:stop] begins: after its last non-zero byte and after
    every range (section, header table) that starts in it, none of which may reach into `stop`."""
    end = start + len(data[start:stop].rstrip(b"\0"))
    for first, size, what in ranges:
        if start <= first < stop:
            if first + size > stop:
                raise _LeftAlone(f"{what} runs from the padding into the next PT_LOAD")
            end = max(end, first + size)
    return end


def _blocks(data: bytes, elf: _Elf) -> list[_Block]:
    """Each load's block and its new offset: the first one at or after the previous block's new
    end that is congruent to the load's address modulo the page."""
    loads = elf.loads
    _check_loads(loads)
    ranges = [(s.offset, s.size, f"section {s.index}") for s in elf.sections if s.kind != SHT_NOBITS]
    ranges += [(s.offset, s.filesz, f"program header {s.index}") for s in elf.segments if s.kind != PT_LOAD]
    ranges += [
        (elf.phoff, elf.phnum * PHDR.size, "the program header table"),
        (elf.shoff, elf.shnum * SHDR.size, "the section header table"),
    ]
    stops = [load.offset for load in loads[1:]] + [len(data)]
    blocks: list[_Block] = []
    for load, stop in zip(loads, stops, strict=True):
        end = _kept_end(data, load.end, stop, ranges) if stop < len(data) else stop
        if not blocks:
            new = load.offset
        else:
            previous = blocks[-1]
            new_end = previous.new_offset + (previous.end - previous.load.offset)
            new = new_end + (load.vaddr - new_end) % PAGE
        blocks.append(_Block(load, end, new))
    return blocks


def _new_offset(blocks: list[_Block], start: int, size: int, what: str) -> int:
    """The new offset of the `size` bytes at `start`, which must lie in one block."""
    for block in blocks:
        if block.holds(start, size):
            if start + size > block.end:
                raise _LeftAlone(f"{what} runs past the end of PT_LOAD {block.load.index}'s bytes")
            return start - block.delta
    raise _LeftAlone(f"{what} lies in the padding removed between segments")


def _section_offset(section: SectionHeader, blocks: list[_Block]) -> int:
    what = f"section {section.index}"
    if section.kind == SHT_NOBITS and section.flags & SHF_ALLOC:
        # .bss: it has no bytes, so its offset follows its address into the load that maps it.
        for block in blocks:
            if block.load.vaddr <= section.addr <= block.load.vaddr + block.load.memsz:
                return section.offset - block.delta
    size = 0 if section.kind == SHT_NOBITS else section.size
    return _new_offset(blocks, section.offset, size, what)


def relayout(data: bytes) -> Relayout:
    """`data` re-laid out for 4 KiB pages, or None and why it was left alone (see the module's doc)."""
    try:
        new = _relayout(data)
        return Relayout(new, saved=len(data) - len(new))
    except _LeftAlone as exc:
        return Relayout(None, str(exc))


def _relayout(data: bytes) -> bytes:
    elf = _parse(data)
    if not elf.loads:
        raise _LeftAlone("no PT_LOAD segment")
    blocks = _blocks(data, elf)
    if blocks[-1].delta == 0:
        raise _LeftAlone("already laid out for 4 KiB pages (nothing to save)")
    table_end = elf.shoff + elf.shnum * SHDR.size
    mapped = [load.index for load in elf.loads if load.offset < table_end and elf.shoff < load.end]
    if mapped:
        # Its sh_offset fields are edited, and they would then change what the load maps.
        raise _LeftAlone(f"the section header table lies inside PT_LOAD {mapped[0]}")
    out = bytearray()
    for block in blocks:
        out += bytes(block.new_offset - len(out))
        out += data[block.load.offset : block.end]
    out[: blocks[0].load.offset] = data[: blocks[0].load.offset]
    phoff = _new_offset(blocks, elf.phoff, elf.phnum * PHDR.size, "the program header table")
    shoff = _new_offset(blocks, elf.shoff, elf.shnum * SHDR.size, "the section header table")
    struct.pack_into("<QQ", out, 0x20, phoff, shoff)
    loads = elf.loads
    for segment in elf.segments:
        at = phoff + segment.index * PHDR.size
        if segment.kind == PT_LOAD:
            struct.pack_into("<Q", out, at + 8, blocks[loads.index(segment)].new_offset)
            if segment.align > PAGE:
                struct.pack_into("<Q", out, at + 48, PAGE)
        else:
            new = _new_offset(blocks, segment.offset, segment.filesz, f"program header {segment.index}")
            struct.pack_into("<Q", out, at + 8, new)
    for section in elf.sections:
        struct.pack_into("<Q", out, shoff + section.index * SHDR.size + 24, _section_offset(section, blocks))
    result = bytes(out)
    _check_same_image(data, elf, result)
    return result


def _masked(data: bytes, elf: _Elf) -> bytes:
    """`data` with its ELF header and program header table zeroed: the only bytes the re-layout edits."""
    masked = bytearray(data)
    masked[: EHDR.size] = bytes(EHDR.size)
    table = elf.phnum * PHDR.size
    masked[elf.phoff : elf.phoff + table] = bytes(table)
    return bytes(masked)


def _check_same_image(old: bytes, elf: _Elf, new: bytes) -> None:
    """Proof, from the new file alone, that every segment and section holds the bytes it held (the
    headers this module edits aside), at the address it had, and that each load maps with 4 KiB
    pages; anything else is a bug here, and the file is left alone."""
    moved = _parse(new)
    problems = load_problems(new)
    if problems:
        raise _LeftAlone(f"the result would not load: {problems[0]}")
    old_bytes, new_bytes = _masked(old, elf), _masked(new, moved)
    for before, after in zip(elf.segments, moved.segments, strict=True):
        same = (before.kind, before.vaddr, before.filesz, before.memsz) == (
            after.kind,
            after.vaddr,
            after.filesz,
            after.memsz,
        )
        if not same or old_bytes[before.offset : before.end] != new_bytes[after.offset : after.end]:
            raise _LeftAlone(f"program header {before.index} would change (a bug in the re-layout)")
    for s_before, s_after in zip(elf.sections, moved.sections, strict=True):
        size = s_before.size if s_before.in_file else 0
        if old_bytes[s_before.offset : s_before.offset + size] != new_bytes[s_after.offset : s_after.offset + size]:
            raise _LeftAlone(f"section {s_before.index} would change (a bug in the re-layout)")
