"""The classes and functions a pickle (or a joblib file) needs, read with `pickletools`, never unpickled.

A model loads on Lambda only if every module its pickle names (GLOBAL, STACK_GLOBAL, INST) imports
there; a pruned layer may lack one, and no trace sees it, because the model is read at run time.
Reading the opcodes needs a small stack: STACK_GLOBAL takes its names from earlier pushes (often
memoized), and joblib writes each numpy array's raw bytes straight after the array's wrapper is
built, so the reader must know the wrapper's shape and dtype to step over them. joblib files may
be zlib, gzip, bz2, xz or lzma streams around the pickle.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import math
import pickletools
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

# joblib's compressor magics (joblib/compressor.py), tried in this order; a pickle starts with PROTO (0x80).
_COMPRESSED = (
    (b"\x1f\x8b", "gzip", gzip.decompress),
    (b"BZh", "bz2", bz2.decompress),
    (b"\xfd7zXZ\x00", "xz", lzma.decompress),
    (b"\x5d\x00", "lzma", lzma.decompress),
    (b"\x78", "zlib", zlib.decompress),
)
_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_MARK = object()


class UnreadablePickle(ValueError):
    """The bytes are not a pickle this reader can follow; the message says where and why."""


@dataclass(frozen=True)
class Global:
    """A class or function the pickle names: the module must import where the pickle is loaded."""

    module: str
    name: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass
class _Object:
    """What a REDUCE/NEWOBJ/BUILD made, kept only as far as the joblib array wrapper needs."""

    made_by: Any
    args: Any = ()
    state: Any = None


@dataclass
class _Reader:
    stream: io.BytesIO
    found: dict[Global, None] = field(default_factory=dict)  # insertion-ordered set

    def run(self) -> None:
        """Read one pickle (up to its STOP) from the stream's position."""
        stack: list[Any] = []
        memo: dict[int, Any] = {}
        for opcode, arg, pos in pickletools.genops(self.stream):
            name = opcode.name
            if name in {"PROTO", "FRAME", "STOP"}:
                continue
            if name in {"GLOBAL", "INST"}:
                module, _, attr = str(arg).partition(" ")
                made_by = self._global(module, attr)
                if name == "INST":  # INST also calls it with what follows the MARK
                    at = _mark(stack)
                    stack[at:] = [_Object(made_by, tuple(stack[at + 1 :]))]
                else:
                    stack.append(made_by)
            elif name == "STACK_GLOBAL":
                attr, module = stack.pop(), stack.pop()
                if not isinstance(module, str) or not isinstance(attr, str):
                    raise UnreadablePickle(f"STACK_GLOBAL at byte {pos} names no module (got {module!r}, {attr!r})")
                stack.append(self._global(module, attr))
            elif name in {"PUT", "BINPUT", "LONG_BINPUT"}:
                memo[int(str(arg))] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in {"GET", "BINGET", "LONG_BINGET"}:
                stack.append(memo.get(int(str(arg))))
            elif name == "MARK":
                stack.append(_MARK)
            elif name in {"TUPLE", "LIST", "DICT", "FROZENSET"}:
                at = _mark(stack)
                items = stack[at + 1 :]
                del stack[at:]
                stack.append(dict(zip(items[::2], items[1::2], strict=False)) if name == "DICT" else tuple(items))
            elif name.startswith("TUPLE") or name == "EMPTY_TUPLE":
                size = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}[name]
                items = stack[len(stack) - size :]
                del stack[len(stack) - size :]
                stack.append(tuple(items))
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name in {"EMPTY_LIST", "EMPTY_SET"}:
                stack.append([])
            elif name in {"SETITEM", "SETITEMS"}:
                at = len(stack) - 2 if name == "SETITEM" else _mark(stack)
                items = [x for x in stack[at:] if x is not _MARK]
                del stack[at:]
                if isinstance(stack[-1], dict):
                    stack[-1].update(_hashable_pairs(items))
            elif name in {"APPEND", "APPENDS", "ADDITEMS"}:
                del stack[len(stack) - 1 if name == "APPEND" else _mark(stack) :]
            elif name in {"REDUCE", "NEWOBJ"}:
                args = stack.pop()
                stack[-1] = _Object(stack[-1], args)
            elif name == "NEWOBJ_EX":
                del stack[-2:]
                stack[-1] = _Object(stack[-1])
            elif name == "OBJ":
                at = _mark(stack)
                stack[at:] = [_Object(stack[at + 1], tuple(stack[at + 2 :]))]
            elif name == "BUILD":
                state = stack.pop()
                if isinstance(stack[-1], _Object):
                    stack[-1].state = state
                    self._skip_array_data(stack[-1], pos or 0)
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                del stack[_mark(stack) :]
            elif name == "DUP":
                stack.append(stack[-1])
            else:  # a push of a value (its arg), or an opcode whose result no later step inspects
                _generic(stack, opcode, arg)

    def _global(self, module: str, attr: str) -> Global:
        found = Global(module, attr)
        self.found[found] = None
        return found

    def _skip_array_data(self, wrapper: _Object, pos: int) -> None:
        """joblib writes an array's data right after its wrapper's BUILD: raw bytes (after a padding
        byte and its padding, when the wrapper asks for alignment), or a nested pickle for object arrays."""
        made_by = wrapper.made_by
        if not isinstance(made_by, Global) or (made_by.module, made_by.name) != _WRAPPER:
            return
        state = wrapper.state if isinstance(wrapper.state, dict) else {}
        shape, dtype = state.get("shape"), state.get("dtype")
        code, size = _dtype_code(dtype)
        if not isinstance(shape, tuple) or not all(isinstance(n, int) for n in shape) or code is None:
            raise UnreadablePickle(f"the joblib array wrapper built at byte {pos} has no readable shape and dtype")
        if code.startswith("O"):
            self.run()  # the nested pickle's classes count too
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            padding = self.stream.read(1)
            self.stream.seek(int.from_bytes(padding, "little"), io.SEEK_CUR)
        self.stream.seek(math.prod(shape) * size, io.SEEK_CUR)


def _mark(stack: list[Any]) -> int:
    for at in range(len(stack) - 1, -1, -1):
        if stack[at] is _MARK:
            return at
    raise UnreadablePickle("an opcode needs a MARK that is not on the stack")


def _hashable_pairs(items: list[Any]) -> list[tuple[Any, Any]]:
    pairs = zip(items[::2], items[1::2], strict=False)
    return [(key, value) for key, value in pairs if isinstance(key, str | int | bytes | tuple | Global)]


def _generic(stack: list[Any], opcode: pickletools.OpcodeInfo, arg: Any) -> None:
    """Follow the opcode's documented stack effect, pushing its argument (a literal) or a placeholder."""
    if pickletools.markobject in opcode.stack_before:
        del stack[_mark(stack) :]
    else:
        del stack[len(stack) - len(opcode.stack_before) :]
    constants = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
    for _ in opcode.stack_after:
        stack.append(constants.get(opcode.name, arg))


def _dtype_code(dtype: Any) -> tuple[str | None, int]:
    """numpy pickles a dtype as dtype(code, align, copy) with a state tuple whose sixth item is the
    element size (-1 for the fixed-size kinds): 'f8' is 8 bytes, 'U3' 12 (from the state), 'O8' objects."""
    if not isinstance(dtype, _Object) or not isinstance(dtype.args, tuple) or not dtype.args:
        return None, 0
    code = dtype.args[0]
    if not isinstance(code, str):
        return None, 0
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    if len(state) > 5 and isinstance(state[5], int) and state[5] > 0:
        return code, state[5]
    digits = re.search(r"\d+$", code)
    return (code, int(digits.group())) if digits else (None, 0)


def decompressed(data: bytes) -> tuple[bytes, str | None]:
    """The pickle inside `data` and the compression it was in (None: plain). joblib's compressed files
    start with their compressor's magic; a pickle of protocol 2 or later starts with 0x80."""
    if data[:1] == b"\x80":
        return data, None
    for magic, kind, decompress in _COMPRESSED:
        if data.startswith(magic):
            try:
                return decompress(data), kind
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
                raise UnreadablePickle(f"it looks {kind}-compressed, but does not decompress ({exc})") from None
    return data, None  # protocol 0/1 pickles start with an opcode; genops says if it is not one


def pickle_globals(data: bytes) -> list[Global]:
    """Every class or function the pickle (or joblib file) in `data` names, in first-use order."""
    raw, kind = decompressed(data)
    reader = _Reader(io.BytesIO(raw))
    try:
        reader.run()
    except UnreadablePickle:
        raise
    except (ValueError, IndexError, KeyError, TypeError, EOFError) as exc:
        inside = f" (inside its {kind} compression)" if kind else ""
        raise UnreadablePickle(f"it is not a pickle this reader can follow{inside}: {exc}") from None
    return list(reader.found)
