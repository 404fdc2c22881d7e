"""The shared libraries bundled under `*.libs` in a set of layer trees, measured (used by
predictions_size.py): each library's facts and what the build's sharing step decides for it,
each pair of copies of one library, and the OpenBLAS copies that cannot be shared."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lambda_ml_layers.build.library_sharing import Library, plan_sharing
from lambda_ml_layers.build.shared_libraries import binutils, is_bundled, library_facts, needed_by_file
from lambda_ml_layers.build.shared_objects import is_shared_object
from lambda_ml_layers.core.command_runner import call
from lambda_ml_layers.core.errors import LayerToolError


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


# --- 2-4. the bundled libraries ------------------------------------------------------------


def compiler_of(path: Path) -> str:
    """The compiler named in the library's .comment, or its debug link (which names the RPM)."""
    for section in (".comment", ".gnu_debuglink"):
        result = call(["readelf", "-p", section, str(path)], error=None, split_stderr=True)
        words = [line.split("]", 1)[1].strip() for line in result.stdout.splitlines() if "]" in line]
        named = sorted({w for w in words if w.startswith("GCC:") or w.endswith(".debug")})  # not the CRC bytes
        if named:
            return "; ".join(named)
    return "–"


def version_nodes(path: Path) -> str:
    """The symbol versions the library defines (its original SONAME first, marked BASE)."""
    definitions = binutils("readelf", "-V", "-W", str(path)).split("Version definition section", 1)
    if len(definitions) < 2:
        return "–"
    lines = definitions[1].split("Version needs section", 1)[0].splitlines()
    nodes = [line.split("Name:")[1].strip() for line in lines if "Rev:" in line and "Name:" in line]
    return ", ".join(f"{n} (BASE)" if i == 0 else n for i, n in enumerate(nodes))


def unpack_shared_objects(zip_path: Path, into: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        members = [name for name in archive.namelist() if is_shared_object(name)]
        archive.extractall(into, members)
    return into / "python"


def in_built_layer(zip_path: Path, rel: str) -> str:
    """The library's bytes and sha256 in the published zip (after the strip and sharing steps)."""
    with zipfile.ZipFile(zip_path) as archive:
        if f"python/{rel}" not in archive.namelist():
            return "removed"
        data = archive.read(f"python/{rel}")
    return f"{len(data):,} {hashlib.sha256(data).hexdigest()[:12]}"


def library_section(trees: dict[str, Path], built: dict[str, Path], target_glibc: tuple[int, int]) -> list[str]:
    rows, pairs, user_lines = [], [], []
    for layer, site in trees.items():
        shared = [str(p.relative_to(site)) for p in sorted(site.rglob("*")) if p.is_file() and is_shared_object(p.name)]
        needed, _ = needed_by_file(site, shared)
        libraries = [library_facts(site, rel) for rel in shared if is_bundled(rel)]
        plan = plan_sharing(libraries, needed, target_glibc)
        fate = {s.dropped.rel: f"dropped, served by {s.kept.soname}" for s in plan.shares}
        fate.update({s.kept.rel: "kept (serves its duplicate)" for s in plan.shares})
        for lib in libraries:
            users = sorted(rel for rel, names in needed.items() if lib.soname in names)
            user_lines.append(f"- `{lib.soname}`: " + (", ".join(f"`{short(rel)}`" for rel in users) or "none"))
            rows.append(
                [
                    f"{layer}: `{lib.rel}`",
                    f"{lib.size:,}",
                    lib.sha256[:12],
                    f"`{lib.soname}`",
                    version_nodes(site / lib.rel),
                    ".".join(map(str, lib.glibc)),
                    compiler_of(site / lib.rel),
                    str(len(users)),
                    fate.get(lib.rel, "only copy"),
                    in_built_layer(built[layer], lib.rel),
                ]
            )
        groups: dict[str, list[Library]] = {}
        for lib in libraries:
            groups.setdefault(lib.identity, []).append(lib)
        for identity, group in sorted(groups.items()):
            for i, one in enumerate(group):
                for two in group[i + 1 :]:
                    pairs.append(pair_row(layer, identity, one, two, fate))
    lines = [
        "## Shared libraries bundled under `*.libs` (as installed, before any step)",
        "",
        *table(
            [
                "library",
                "bytes",
                "sha256",
                "SONAME",
                "version nodes defined",
                "glibc needed",
                "built by",
                "users (DT_NEEDED)",
                "share-libraries step",
                "in the built layer (bytes, sha256)",
            ],
            rows,
        ),
        "",
        "## Who needs each (DT_NEEDED)",
        "",
        *user_lines,
        "",
        "## Duplicate pairs",
        "",
        *table(["layer: library", "identical bytes", "exports", "decision"], pairs),
    ]
    return lines


def short(rel: str) -> str:
    """scipy/linalg/_fblas.cpython-312-x86_64-linux-gnu.so -> scipy/linalg/_fblas"""
    return rel.split(".cpython-", 1)[0]


def pair_row(layer: str, identity: str, one: Library, two: Library, fate: dict[str, str]) -> list[str]:
    if one.defined == two.defined:
        exports = f"the same {len(one.defined)} symbols@versions"
    elif one.defined < two.defined:
        exports = f"{two.soname} is a strict superset (+{', '.join(sorted(two.defined - one.defined))})"
    elif two.defined < one.defined:
        exports = f"{one.soname} is a strict superset (+{', '.join(sorted(one.defined - two.defined))})"
    else:
        exports = f"neither contains the other ({len(one.defined ^ two.defined)} differ)"
    dropped = [lib for lib in (one, two) if fate.get(lib.rel, "").startswith("dropped")]
    decision = f"shared: {dropped[0].soname} {fate[dropped[0].rel]}" if dropped else "not shared (see the build notes)"
    return [f"{layer}: {identity}", "yes" if one.sha256 == two.sha256 else "no", exports, decision]


def symbols(which: str, path: Path) -> set[str]:
    """Dynamic symbol names (`nm -D --defined-only` or `--undefined-only`), versions left off."""
    lines = binutils("nm", "-D", which, str(path)).splitlines()
    return {line.split()[-1].split("@")[0] for line in lines if line.strip()}


CONFIG_PROBE = """
import ctypes, json, sys
out = {}
for path, symbol in json.loads(sys.argv[1]):
    function = getattr(ctypes.CDLL(path), symbol)
    function.restype = ctypes.c_char_p
    out[path] = function().decode()
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Blas:
    layer: str
    exported: set[str]
    config: str | None  # the library's own get_config function, if it has one
    imports: set[str]  # what the layer's shared objects that need it import from it


def openblas_section(trees: dict[str, Path], python: str) -> list[str]:
    found: dict[Path, Blas] = {}
    for layer, site in trees.items():
        for path in sorted(site.glob("*.libs/*openblas*")):
            exported = symbols("--defined-only", path)
            config = next((s for s in sorted(exported) if s.startswith("scipy_openblas_get_config")), None)
            imports: set[str] = set()
            for user in site.rglob("*.so"):
                if path.name in binutils("readelf", "-d", "-W", str(user)):
                    imports |= symbols("--undefined-only", user)
            found[path] = Blas(layer, exported, config, imports & exported)
    probe = [[str(p), blas.config] for p, blas in found.items() if blas.config]
    configs = json.loads(call([python, "-I", "-c", CONFIG_PROBE, json.dumps(probe)], error=LayerToolError).output)
    rows = []
    for path, blas in found.items():
        others = [o for o in found if o != path]
        served = ", ".join(f"{len(blas.imports & found[o].exported)} by {o.name}" for o in others) or "–"
        suffixed = sum(1 for s in blas.exported if s.endswith("64_"))
        rows.append(
            [
                f"{blas.layer}: `{path.name}`",
                f"{path.stat().st_size:,}",
                configs.get(str(path), "–"),
                f"{suffixed} of {len(blas.exported)}",
                f"{len(blas.imports)}; of them served {served}",
            ]
        )
    return [
        "## The OpenBLAS copies",
        "",
        *table(["library", "bytes", "build configuration", "exports ending `64_`", "symbols its users import"], rows),
    ]
