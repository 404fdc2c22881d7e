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
import json
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the engine package is not installed in .venv

from bundled_libraries import library_section, openblas_section, table, unpack_shared_objects  # noqa: E402
from cold_start import TEMPLATE, unstripped_zips  # noqa: E402  (the same unstripped install)

from lambda_ml_layers.build.build_layers import resolve_target  # noqa: E402
from lambda_ml_layers.build.bytecode import compile_bytecode  # noqa: E402
from lambda_ml_layers.config.project import LayerConfig, build_order, load_project  # noqa: E402
from lambda_ml_layers.config.strip_rules import plan_strip  # noqa: E402
from lambda_ml_layers.config.template import function_specs  # noqa: E402
from lambda_ml_layers.core.errors import LayerToolError  # noqa: E402
from lambda_ml_layers.core.interpreters import find_interpreter  # noqa: E402
from lambda_ml_layers.core.layer_tree import remove_files, tree_size, walk_files  # noqa: E402
from lambda_ml_layers.core.layer_zip import extract  # noqa: E402
from lambda_ml_layers.core.paths import BuildPaths  # noqa: E402
from lambda_ml_layers.core.runtimes import MB  # noqa: E402

PATHS = BuildPaths.of(ROOT)
STEP_TITLES = {
    "strip": "after the strip rules (tests, headers, stubs, dist-info extras)",
    "aws-sdk-data": "after trimming the AWS SDK's data to the kept services",
    "prune": "after pruning scipy/scikit-learn modules nothing traced loads (`[prune]` + `trace.txt`)",
    "shared-objects": "after stripping symbols from shared objects",
    "share-libraries": "after sharing duplicate bundled libraries",
    "bytecode": "after bytecode (sourceless .pyc, docstrings kept)",
    "docstrings": 'after compiling without docstrings (layers with `docstrings = "strip"`)',
}


def mb(size: int) -> str:
    return f"{size / MB:.1f}"


# --- 1. the steps --------------------------------------------------------------------------


def sizes_after_steps(manifest: dict[str, Any]) -> list[tuple[str, int]]:
    """(step, unzipped bytes after it), starting from what was installed: the final size plus
    every byte a step removed, then each step's removal in build order."""
    # Every step that can remove bytes, known here or not (a step added later still adds up).
    steps = [s for s in manifest["steps"] if s["step"] not in ("dedupe", "verify")]
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


def step_order(orders: list[list[str]]) -> list[str]:
    """One order of the steps of all layers: each layer's order kept, new steps after their predecessor."""
    merged: list[str] = []
    for steps in orders:
        for i, step in enumerate(steps):
            if step not in merged:
                after = steps[i - 1] if i else None
                merged.insert(merged.index(after) + 1 if after in merged else len(merged), step)
    return merged


def step_title(step: str) -> str:
    return STEP_TITLES.get(step, f"after the `{step}` step")


def step_section(manifests: dict[str, dict[str, Any]], goal: int, docstrings: dict[str, int]) -> list[str]:
    by_layer = {name: dict(sizes_after_steps(m)) for name, m in manifests.items()}
    for name, saved in docstrings.items():  # the bytecode step split: docstrings kept, then stripped
        by_layer[name]["docstrings"] = by_layer[name]["bytecode"]
        by_layer[name]["bytecode"] += saved
    names = list(manifests)
    order = step_order([[step for step, _ in sizes_after_steps(m)] for m in manifests.values()])
    if "docstrings" not in order and "bytecode" in order:
        order.insert(order.index("bytecode") + 1, "docstrings")
    current = {n: by_layer[n]["installed"] for n in names}
    rows = []
    previous = None
    for step in order:
        current = {n: by_layer[n].get(step, current[n]) for n in names}  # a layer without the step: unchanged
        total = sum(current.values())
        title = "pip install of the locks, nothing removed" if step == "installed" else step_title(step)
        saved_text = "–" if previous is None else f"{(previous - total) / MB:.1f}"
        rows.append([title, *(mb(current[n]) for n in names), mb(total), saved_text, f"{(total - goal) / MB:+.1f}"])
        previous = total
    return [
        "## Size after each step (MB unzipped, 10^6 bytes)",
        "",
        *table(["", *names, "all", "step saved", f"vs {goal / MB:.0f} MB goal"], rows),
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
