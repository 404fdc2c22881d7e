"""Rename one DT_NEEDED entry of an ELF64 little-endian shared object in place, changing no layout.

The new name is written over the old one in `.dynstr` and padded with NULs, so it must be no
longer than the old one. Nothing moves: no section grows, no offset changes, which is why this
is safer than a general ELF rewriter (patchelf-edited files are the ones `strip` and loaders
have tripped over). The dynamic loader reads the name both from DT_NEEDED and from
`.gnu.version_r` (which library a symbol version must come from); the linker stores them as one
string, and both references are checked here.

Refused (ValueError, with the reason) when the edit could change anything else: another
string reference pointing inside the old name (linkers may share a name's tail with another
string), a 32-bit or big-endian file, or no such DT_NEEDED entry.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SHT_SYMTAB = 2
SHT_DYNAMIC = 6
SHT_DYNSYM = 11
SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERNEED = 0x6FFFFFFE
DT_NULL, DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 14, 15, 29
STRING_TAGS = (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH)


@dataclass(frozen=True)
class Section:
    kind: int
    offset: int
    size: int
    link: int
    info: int


@dataclass(frozen=True)
class DynamicStrings:
    """Where `.dynstr` is in the file, and every reference into it (offsets within `.dynstr`)."""

    start: int
    size: int
    needed: tuple[int, ...]  # DT_NEEDED entries
    version_files: tuple[int, ...]  # vn_file of each .gnu.version_r entry
    references: tuple[int, ...]  # every string reference of any kind, the above included


def _sections(data: bytes) -> list[Section]:
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise ValueError("only 64-bit little-endian ELF files are edited")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    if shoff == 0 or shnum == 0:
        raise ValueError("no section headers")
    sections = []
    for index in range(shnum):
        base = shoff + index * shentsize
        _, kind, _, _, offset, size, link, info, _, _ = struct.unpack_from("<IIQQQQIIQQ", data, base)
        sections.append(Section(kind, offset, size, link, info))
    return sections


def section_kinds(data: bytes) -> list[int]:
    """The sh_type of each section (SHT_SYMTAB present: the file still has its symbol table)."""
    return [section.kind for section in _sections(data)]


def _version_references(data: bytes, section: Section, need: bool) -> tuple[list[int], list[int]]:
    """(file name references, all name references) of .gnu.version_r (need) or .gnu.version_d."""
    files: list[int] = []
    names: list[int] = []
    entry = section.offset
    for _ in range(section.info):  # sh_info: the number of entries
        if need:
            _, count, file_name, aux, following = struct.unpack_from("<HHIII", data, entry)
            files.append(file_name)
            aux_entry = entry + aux
            for _ in range(count):
                _, _, _, name, aux_next = struct.unpack_from("<IHHII", data, aux_entry)
                names.append(name)
                aux_entry += aux_next
        else:
            _, _, _, count, _, aux, following = struct.unpack_from("<HHHHIII", data, entry)
            aux_entry = entry + aux
            for _ in range(count):
                name, aux_next = struct.unpack_from("<II", data, aux_entry)
                names.append(name)
                aux_entry += aux_next
        if following == 0:
            break
        entry += following
    return files, files + names


def dynamic_strings(data: bytes) -> DynamicStrings:
    sections = _sections(data)
    dynamic = [s for s in sections if s.kind == SHT_DYNAMIC]
    if len(dynamic) != 1:
        raise ValueError("no single .dynamic section")
    strtab = sections[dynamic[0].link]
    needed, references = [], []
    for entry in range(dynamic[0].offset, dynamic[0].offset + dynamic[0].size, 16):
        tag, value = struct.unpack_from("<qQ", data, entry)
        if tag == DT_NULL:
            break
        if tag in STRING_TAGS:
            references.append(value)
        if tag == DT_NEEDED:
            needed.append(value)
    version_files: list[int] = []
    for section in sections:
        if section.kind == SHT_DYNSYM and sections[section.link] == strtab:
            references += [
                struct.unpack_from("<I", data, entry)[0]
                for entry in range(section.offset, section.offset + section.size, 24)
            ]
        elif section.kind in (SHT_GNU_VERNEED, SHT_GNU_VERDEF):
            files, names = _version_references(data, section, need=section.kind == SHT_GNU_VERNEED)
            version_files += files
            references += names
    return DynamicStrings(strtab.offset, strtab.size, tuple(needed), tuple(version_files), tuple(references))


def _string_at(data: bytes, strings: DynamicStrings, offset: int) -> bytes:
    start = strings.start + offset
    return data[start : data.index(b"\0", start)]


def needed_names(data: bytes) -> list[str]:
    strings = dynamic_strings(data)
    return [_string_at(data, strings, offset).decode() for offset in strings.needed]


def rename_needed(data: bytes, old: str, new: str) -> bytes:
    """`data` with DT_NEEDED `old` (and its .gnu.version_r file name) renamed to `new`, in place."""
    old_bytes, new_bytes = old.encode(), new.encode()
    if len(new_bytes) > len(old_bytes):
        raise ValueError(f"{new} is longer than {old}: it cannot be written in place")
    strings = dynamic_strings(data)
    targets = {o for o in strings.needed + strings.version_files if _string_at(data, strings, o) == old_bytes}
    if not any(o in targets for o in strings.needed):
        raise ValueError(f"no DT_NEEDED entry {old}")
    for target in targets:
        inside = [r for r in strings.references if target < r < target + len(old_bytes)]
        if inside:
            raise ValueError(f"another string shares the bytes of {old} (at .dynstr+{inside[0]})")
    edited = bytearray(data)
    for target in targets:
        start = strings.start + target
        edited[start : start + len(old_bytes)] = new_bytes.ljust(len(old_bytes), b"\0")
    return bytes(edited)
