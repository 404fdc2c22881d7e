"""The Predictions function's layers against the 150 MB stretch goal (issue 12), measured.

    .venv/bin/python benchmarks/predictions_size.py [--function PredictionsFunction] [--goal-mb 150]

Prints, and writes to build/benchmarks/predictions_size.md (the source of docs/size-budget.md):

1. the size of the function's layers after each build step, per layer and in all, from the
   published manifests (each step records the bytes it removed), against the goal;
2. every shared library bundled under a `*.libs` folder, as pip installs it (the unstripped
   lock, installed as benchmarks/cold_start.py does): size, sha256, SONAME, the symbol
   version nodes it defines, the newest glibc it needs, the compiler named in its debug link
   or .comment, how many shared objects need it, and what the build's sharing step decides;
3. each pair of copies of one library: identical bytes, exports, which one serves the other;
4. the OpenBLAS copies, which cannot be shared: build configuration (asked of each library in
   the target interpreter), symbol suffixes, and how many of the symbols each layer's own
   extensions import the other copy defines;
5. the largest files left in each built layer.
A measurement, not a test: nothing fails when a figure moves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the engine package is not installed in .venv

from cold_start import TEMPLATE, unstripped_zips  # noqa: E402  (the same unstripped install)

from lambda_ml_layers.build import resolve_target  # noqa: E402
from lambda_ml_layers.bytecode import compile_bytecode  # noqa: E402
from lambda_ml_layers.command_runner import call  # noqa: E402
from lambda_ml_layers.config import LayerConfig, build_order, load_project  # noqa: E402
from lambda_ml_layers.errors import LayerToolError  # noqa: E402
from lambda_ml_layers.interpreters import find_interpreter  # noqa: E402
from lambda_ml_layers.layer_tree import remove_files, tree_size, walk_files  # noqa: E402
from lambda_ml_layers.layer_zip import extract  # noqa: E402
from lambda_ml_layers.library_sharing import Library, plan_sharing  # noqa: E402
from lambda_ml_layers.paths import BuildPaths  # noqa: E402
from lambda_ml_layers.runtimes import MB  # noqa: E402
from lambda_ml_layers.sam_template import function_specs  # noqa: E402
from lambda_ml_layers.shared_libraries import binutils, is_bundled, library_facts, needed_by_file  # noqa: E402
from lambda_ml_layers.shared_objects import is_shared_object  # noqa: E402
from lambda_ml_layers.strip_rules import plan_strip  # noqa: E402

PATHS = BuildPaths.of(ROOT)
STEP_TITLES = {
    "strip": "after the strip rules (tests, headers, stubs, dist-info extras)",
    "aws-sdk-data": "after trimming the AWS SDK's data to the kept services",
    "shared-objects": "after stripping symbols from shared objects",
    "share-libraries": "after sharing duplicate bundled libraries",
    "bytecode": "after bytecode (sourceless .pyc, docstrings kept)",
    "docstrings": 'after compiling without docstrings (layers with `docstrings = "strip"`)',
}
PRUNING_PLACEHOLDER = (
    "after pruning unused scipy/scikit-learn modules: PLACEHOLDER, the lead fills this after merging prune-layers"
)


def mb(size: int) -> str:
    return f"{size / MB:.1f}"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


# --- 1. the steps --------------------------------------------------------------------------


def sizes_after_steps(manifest: dict[str, Any]) -> list[tuple[str, int]]:
    """(step, unzipped bytes after it), starting from what was installed: the final size plus
    every byte a step removed, then each step's removal in build order."""
    steps = [s for s in manifest["steps"] if s["step"] in STEP_TITLES and s["step"] != "docstrings"]
    size = manifest["unzipped_bytes"] + sum(s["bytes_removed"] for s in steps)
    sizes = [("installed", size)]
    for step in steps:
        size -= step["bytes_removed"]
        sizes.append((step["step"], size))
    return sizes


def docstring_bytes(layer: LayerConfig, unstripped_zip: Path, python: str, temp: Path) -> int:
    """What compiling without docstrings saves on this layer: its installed tree, less what the
    strip rules remove, compiled by the engine's bytecode step both ways (as the build does)."""
    sizes = {}
    for docstrings in ("keep", "strip"):
        site = temp / f"{layer.name}-{docstrings}" / "python"
        extract(unstripped_zip, site.parent)
        plan = plan_strip([rel for rel, _ in walk_files(site)], layer.strip_rules, layer.protect)
        remove_files(site, [rel for paths in plan.values() for rel in paths])
        compile_bytecode(site, python, layer.bytecode, "/opt/python", docstrings)
        sizes[docstrings] = tree_size(site)
    return sizes["keep"] - sizes["strip"]


def step_section(manifests: dict[str, dict[str, Any]], goal: int, docstrings: dict[str, int]) -> list[str]:
    by_layer = {name: dict(sizes_after_steps(m)) for name, m in manifests.items()}
    for name, saved in docstrings.items():  # the bytecode step split: docstrings kept, then stripped
        by_layer[name]["docstrings"] = by_layer[name]["bytecode"]
        by_layer[name]["bytecode"] += saved
    for layer_sizes in by_layer.values():
        layer_sizes.setdefault("docstrings", layer_sizes["bytecode"])
    names = list(manifests)
    rows = []
    previous = None
    for step in ["installed", *STEP_TITLES]:
        if not all(step in by_layer[n] for n in names):
            continue
        total = sum(by_layer[n][step] for n in names)
        title = "pip install of the locks, nothing removed" if step == "installed" else STEP_TITLES[step]
        saved_text = "–" if previous is None else f"{(previous - total) / MB:.1f}"
        sizes = [mb(by_layer[n][step]) for n in names]
        rows.append([title, *sizes, mb(total), saved_text, f"{(total - goal) / MB:+.1f}"])
        previous = total
    rows.append([PRUNING_PLACEHOLDER, *("–" for _ in names), "–", "–", "–"])
    return [
        "## Size after each step (MB unzipped, 10^6 bytes)",
        "",
        *table(["", *names, "all", "step saved", f"vs {goal / MB:.0f} MB goal"], rows),
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
    rows, pairs = [], []
    for layer, site in trees.items():
        shared = [str(p.relative_to(site)) for p in sorted(site.rglob("*")) if p.is_file() and is_shared_object(p.name)]
        needed, _ = needed_by_file(site, shared)
        libraries = [library_facts(site, rel) for rel in shared if is_bundled(rel)]
        plan = plan_sharing(libraries, needed, target_glibc)
        fate = {s.dropped.rel: f"dropped, served by {s.kept.soname}" for s in plan.shares}
        fate.update({s.kept.rel: "kept (serves its duplicate)" for s in plan.shares})
        for lib in libraries:
            users = sorted(rel for rel, names in needed.items() if lib.soname in names)
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
        "## Duplicate pairs",
        "",
        *table(["layer: library", "identical bytes", "exports", "decision"], pairs),
    ]
    return lines


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


# --- 5. what is left -----------------------------------------------------------------------


def largest_files(zips: dict[str, Path], count: int) -> list[str]:
    lines = ["## Largest files left in the built layers", ""]
    for layer, zip_path in zips.items():
        with zipfile.ZipFile(zip_path) as archive:
            infos = sorted(archive.infolist(), key=lambda i: i.file_size, reverse=True)[:count]
        lines += [f"**{layer}**: " + "; ".join(f"`{i.filename}` {mb(i.file_size)}" for i in infos), ""]
    return lines


def run(function: str, goal_mb: float, runtime_name: str | None, arch_name: str | None) -> str:
    project = load_project(ROOT)
    runtime, arch = resolve_target(project, runtime_name, arch_name)
    spec = next((s for s in function_specs(TEMPLATE) if s.name == function), None)
    if spec is None:
        raise LayerToolError(f"{TEMPLATE} has no function {function}.")
    output = PATHS.output_dir(runtime.name, arch)
    zips = {name: output / f"{name}.zip" for name in spec.layers}
    missing = [str(p) for p in zips.values() if not p.exists()]
    if missing:
        raise LayerToolError(f"{', '.join(missing)} missing: run `inv build-layers` first.")
    manifests = {name: json.loads(p.with_suffix(".json").read_text()) for name, p in zips.items()}
    layers = [layer for layer in build_order(project) if layer.name in spec.layers]
    unstripped = unstripped_zips(project, layers, runtime, arch)
    lines = [f"# {function}: its layers against the {goal_mb:.0f} MB stretch goal ({runtime.name}, {arch})", ""]
    python = find_interpreter(runtime)
    with tempfile.TemporaryDirectory(prefix="predictions-size-") as temp:
        docstrings = {
            layer.name: docstring_bytes(layer, unstripped[layer.name], python, Path(temp))
            for layer in layers
            if layer.docstrings == "strip"
        }
    lines += [*step_section(manifests, int(goal_mb * MB), docstrings), ""]
    with tempfile.TemporaryDirectory(prefix="predictions-size-") as temp:
        trees = {name: unpack_shared_objects(unstripped[name], Path(temp) / name) for name in spec.layers}
        section = library_section(trees, zips, runtime.glibc)
        lines += [*section, ""]
        lines += [*openblas_section(trees, python), ""]
    lines += largest_files(zips, 8)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--function", default="PredictionsFunction", help="logical id in infra/template.yaml")
    parser.add_argument("--goal-mb", type=float, default=150.0, help="the stretch goal (default 150)")
    parser.add_argument("--runtime", help="Lambda runtime (default: the project's)")
    parser.add_argument("--arch", help="architecture (default: the project's)")
    args = parser.parse_args(argv)
    try:
        text = run(args.function, args.goal_mb, args.runtime, args.arch)
    except LayerToolError as exc:
        print(f"predictions_size: {exc}", file=sys.stderr)
        return exc.exit_code
    print(text)
    PATHS.benchmarks.mkdir(parents=True, exist_ok=True)
    (PATHS.benchmarks / "predictions_size.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
