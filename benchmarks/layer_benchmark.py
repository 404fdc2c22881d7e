"""Layer benchmark: our layers side by side with plain pip and two popular recipes.

    .venv/bin/python benchmarks/layer_benchmark.py [--runs 7] [--skip-build-timing] [--skip-policies]
        [--skip-pruned]

For the same hash-pinned locks (each layer minus what its base layers provide, as the
engine installs them) it measures, per layer and in total:

  (a) plain      `pip install --target` as the engine's install step does it: no stripping,
                 no bytecode (source only), which is what SAM and most plugins ship;
  (b) slim       serverless-python-requirements with `slim: true` (its default patterns and
                 its `strip` of every .so);
  (c) wrangler   the AWS SDK for pandas (awswrangler) layer build's clean-up commands;
  (d) ours       the zips `inv build-layers` writes, with the project's bytecode policy;
  (e) ours with the other bytecode policies (same strip rules), built in a scratch copy of
      the project, to choose the default policy;
  (f) ours with [prune] on (when a layer has it, off), built in a scratch copy of the project:
      what pruning saves, and whether the cold import changed.

It reports unzipped MB (1 MB = 1,000,000 bytes, as Lambda counts), whether each recipe's
layers still import (in python3.12, base layers laid out as Lambda's /opt), the cold
import of pandas + sklearn.ensemble + boto3 + an S3 client in fresh isolated processes,
and the time of a cold and a no-op `inv build-layers`. It prints the tables and writes
them to build/benchmarks/layer_benchmark.md and .json. It is a measurement, not a test:
a broken recipe is a finding in the table, not a crash.

Everything it installs or extracts lives under build/benchmarks/tmp and is removed at
the end (unless --keep-tmp).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the engine package is not installed in .venv

from lambda_ml_layers.build.build_layers import resolve_target  # noqa: E402
from lambda_ml_layers.build.layer_contents import load_locks, modules_to_verify, packages_to_install  # noqa: E402
from lambda_ml_layers.build.pip_runner import install_for_target  # noqa: E402
from lambda_ml_layers.build.target_imports import check_layer, lambda_sys_path  # noqa: E402
from lambda_ml_layers.config.locks import LayerLock  # noqa: E402
from lambda_ml_layers.config.project import LayerConfig, ProjectConfig, base_layers_of, build_order, load_project  # noqa: E402
from lambda_ml_layers.config.rules import BYTECODE_POLICIES  # noqa: E402
from lambda_ml_layers.core.errors import BuildInProgress, LayerToolError  # noqa: E402
from lambda_ml_layers.core.interpreters import find_interpreter  # noqa: E402
from lambda_ml_layers.core.layer_tree import walk_files  # noqa: E402
from lambda_ml_layers.core.layer_zip import extract, sha256_of, unzipped_size  # noqa: E402
from lambda_ml_layers.core.paths import BuildPaths  # noqa: E402
from lambda_ml_layers.core.runtimes import ARCHES, LAMBDA_UNZIPPED_LIMIT, MB, Runtime  # noqa: E402
from lambda_ml_layers.core.toml_files import read_toml, write_toml  # noqa: E402

PATHS = BuildPaths.of(ROOT)
OUT_DIR = PATHS.benchmarks
TMP_DIR = OUT_DIR / "tmp"
INV = ROOT / ".venv" / "bin" / "inv"

# The goals, checked at the end of the table.
GOALS_MB = {"core-data-science": 100, "aws-utilities": 50}
GOAL_IMPORT_RATIO = 1 / 3

# What every function of the pipeline imports at a cold start, timed in a fresh interpreter.
# `-I -S`: no host site-packages, no PYTHON* variables; the layers are put on sys.path in
# Lambda's order. `-B` as well: /opt is read-only on Lambda, and the chmod below does not
# stop root (which this benchmark may run as) from writing __pycache__, so without -B the
# second run of a source-only tree would quietly use bytecode the first one wrote.
TIMED_IMPORT = """
import sys, time
sys.path[:0] = sys.argv[1:]
started = time.perf_counter()
import pandas, sklearn.ensemble, boto3
boto3.client("s3", region_name="us-east-1")
print("SECONDS", time.perf_counter() - started)
"""

# Credentials boto3 finds without a network call, and nothing from the host's AWS config.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}

# serverless-python-requirements, `slim: true` (lib/slim.js, v6.1.2:
# https://app.unpkg.com/serverless-python-requirements@6.1.2/files/lib/slim.js, same in
# github.com/serverless/serverless-python-requirements lib/slim.js): deleteFiles() removes
# every glob match of these default patterns under the requirements folder (fse.removeSync,
# so whole folders), and getStripCommand() runs `find <folder> -name '*.so' -exec strip {} ;`
# ("direct" strip mode on Linux without Docker). `strip` without options is --strip-all.
SLIM_PATTERNS = ("*.py[c|o]", "__pycache__*", "*.dist-info*")  # '**/' + each, as node-glob reads it
SLIM_STRIP = ("find", "python", "-name", "*.so", "-exec", "strip", "{}", ";")

# AWS SDK for pandas, building/lambda/build-lambda-layer.sh ("# Removing nonessential files";
# github.com/aws/aws-sdk-pandas at 04733f229053c9fa027745354ab39623d76c224a), run verbatim
# in the folder that holds the layer's python/.
WRANGLER_COMMANDS = (
    ("find", "python", "-name", "*.so", "-type", "f", "-exec", "strip", "{}", ";"),
    ("find", "python", "-wholename", "*/tests/*", "-type", "f", "-delete"),
    ("find", "python", "-regex", r"^.*\(__pycache__\|\.py[co]\)$", "-delete"),
)

STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the tables."""
    print(f"[{time.monotonic() - STARTED:6.0f}s] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Results


@dataclass
class LayerCheck:
    """target_imports.check_layer's outcome for one layer with its base layers under /opt."""

    modules: int
    dists: list[str]  # locked packages of the layer and its bases, looked up with importlib.metadata
    import_failures: dict[str, str]
    missing_metadata: list[str]  # locked packages importlib.metadata cannot find
    wrong_versions: dict[str, str]  # package -> version found instead of the lock's

    @property
    def imports_ok(self) -> bool:
        return not self.import_failures


@dataclass
class Variant:
    """One way of building the three layers, and what was measured about it."""

    key: str
    title: str
    bytecode: str
    layers: dict[str, Path] = field(default_factory=dict)  # layer -> folder holding python/
    sizes: dict[str, int] = field(default_factory=dict)  # unzipped bytes per layer
    files: dict[str, int] = field(default_factory=dict)
    checks: dict[str, LayerCheck] = field(default_factory=dict)
    opt: Path | None = None  # all layers merged as Lambda's /opt, for the cold-import runs
    failed: str | None = None  # the variant could not be produced at all
    timed_error: str | None = None  # why the timed import could not run, if it could not
    seconds: list[float] = field(default_factory=list)
    wall_seconds: list[float] = field(default_factory=list)
    build_seconds: float | None = None  # for the policy variants, a cold build in a scratch root

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


# ---------------------------------------------------------------------------------------
# Small helpers over the file system and subprocesses


def run_inv(args: list[str], log_file: Path, max_wait: float = 900) -> tuple[float, int]:
    """Run `inv build-layers ARGS` from the repository; (seconds, exit code), output to log_file.

    The engine refuses to start while another build uses the same build/ folder; then this
    waits and tries again (up to `max_wait` seconds), timing only the run that went ahead."""
    waited_since = time.monotonic()
    waiting = False
    while True:
        started = time.perf_counter()
        with log_file.open("a") as out:
            out.write(f"\n$ inv build-layers {' '.join(args)}\n")
            out.flush()
            result = subprocess.run([str(INV), "build-layers", *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - started
        if result.returncode != BuildInProgress.exit_code or time.monotonic() - waited_since > max_wait:
            return seconds, result.returncode
        if not waiting:
            log(f"another build is using build/; waiting for it ({tail(log_file, 1)[:100]})")
        waiting = True
        time.sleep(5)


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def link_layers(layer_dirs: list[Path], opt: Path) -> None:
    """Lay the layers out in order as Lambda extracts them into /opt (a later layer's file
    replaces an earlier one's). Hard links: nothing is copied, and nothing after this edits a
    file in place (Python only adds __pycache__ files, into the fresh folders made here)."""
    for layer_dir in layer_dirs:
        for rel, _ in walk_files(layer_dir):
            target = opt / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            os.link(layer_dir / rel, target)


def set_writable(root: Path, writable: bool) -> None:
    """chmod -R a-w (as Lambda's read-only /opt) or back to u+w so the clean-up can delete."""
    paths = [root, *root.rglob("*")]
    for path in paths:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | 0o200 if writable else mode & ~0o222)


@contextmanager
def read_only(root: Path) -> Iterator[None]:
    set_writable(root, False)
    try:
        yield
    finally:
        set_writable(root, True)


def remove_tree(root: Path) -> None:
    if root.exists():
        set_writable(root, True)
        shutil.rmtree(root)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mb(size: int) -> str:
    return f"{size / MB:.1f}"


# ---------------------------------------------------------------------------------------
# The recipes


def base_names(project: ProjectConfig, layer: LayerConfig) -> list[str]:
    """The layer's base layers (transitively), in the order Lambda would extract them."""
    return [base.name for base in base_layers_of(project, layer)]


def install_plain(
    project: ProjectConfig, locks: dict[str, LayerLock], runtime: Runtime, arch: str, variant: Variant
) -> dict[str, list[str]]:
    """(a): the engine's own install step per layer, minus what the base layers provide, and
    nothing else. Returns each layer's top-level modules, read from RECORD before any recipe
    deletes it, for the import checks of every variant."""
    pip_cache = PATHS.pip_cache  # the engine's pip cache, so it stays warm
    modules: dict[str, list[str]] = {}
    for layer in build_order(project):
        wanted = packages_to_install(project, locks, layer)
        site = TMP_DIR / variant.key / layer.name / "python"
        log(f"plain pip install --target: {layer.name} ({len(wanted)} packages)")
        site.parent.mkdir(parents=True)  # install_for_target writes its requirements file beside the target
        install_for_target(wanted, site, runtime, arch, pip_cache)
        modules[layer.name] = modules_to_verify(site, layer)
        variant.layers[layer.name] = site.parent
    return modules


def copy_variant(source: Variant, key: str, title: str, bytecode: str) -> Variant:
    """A real copy (not links): `strip` rewrites shared objects, and must not touch (a)'s."""
    variant = Variant(key, title, bytecode)
    for name, folder in source.layers.items():
        target = TMP_DIR / key / name
        shutil.copytree(folder, target, symlinks=True)
        variant.layers[name] = target
    return variant


def apply_slim(layer_dir: Path) -> None:
    """(b) serverless-python-requirements `slim: true`, see SLIM_PATTERNS."""
    site = layer_dir / "python"
    for pattern in SLIM_PATTERNS:
        for path in sorted(site.rglob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    subprocess.run(SLIM_STRIP, cwd=layer_dir, check=True, capture_output=True)


def apply_wrangler(layer_dir: Path) -> None:
    """(c) the AWS SDK for pandas layer clean-up, see WRANGLER_COMMANDS."""
    for command in WRANGLER_COMMANDS:
        subprocess.run(command, cwd=layer_dir, check=True, capture_output=True)


def extract_zips(zips: dict[str, Path], variant: Variant) -> None:
    """Sizes from the zips themselves (what Lambda counts); trees extracted for the checks."""
    for name, zip_file in zips.items():
        target = TMP_DIR / variant.key / name
        extract(zip_file, target)
        variant.layers[name] = target
        variant.files[name], variant.sizes[name] = unzipped_size(zip_file)


def measure_trees(variant: Variant) -> None:
    for name, folder in variant.layers.items():
        files = list(walk_files(folder))
        variant.files[name] = len(files)
        variant.sizes[name] = sum(size for _, size in files)


# ---------------------------------------------------------------------------------------
# Our build: freshness, build timing, the other bytecode policies


def report_is_stale(project: ProjectConfig, runtime: str, arch: str) -> str | None:
    """Why the target's report and zips cannot be trusted as this tree's build, or None."""
    report, output_dir = PATHS.report(runtime, arch), PATHS.output_dir(runtime, arch)
    if not report.exists():
        return f"{report.relative_to(ROOT)} is missing"
    data = json.loads(report.read_text())
    built = {layer["name"]: layer for layer in data.get("layers", [])}
    for layer in project.layers:
        zip_file = output_dir / f"{layer.name}.zip"
        if layer.name not in built or not zip_file.exists():
            return f"{layer.name} is not in the last build"
        if sha256_of(zip_file) != built[layer.name]["sha256"]:
            return f"{zip_file.name} is not the zip {report.relative_to(ROOT)} describes"
    inputs = [*(ROOT / "lambda_ml_layers").glob("*.py"), *(p for p in (ROOT / "layers").rglob("*") if p.is_file())]
    newest = max(p.stat().st_mtime for p in inputs)
    if newest > report.stat().st_mtime:
        return "the engine or a layer's config/lock changed after the last build"
    return None


def rebuilt_layers() -> list[str]:
    """Layers the last build built instead of taking from its cache (from the default target's report)."""
    report = json.loads(PATHS.default_report.read_text())
    return [layer["name"] for layer in report["layers"] if not layer.get("cache_hit")]


def time_builds(log_file: Path, noop_runs: int) -> dict[str, Any]:
    """Cold build (--force: no layer cache, warm pip cache), then no-op builds right after.

    A "no-op" run that rebuilt a layer is not timed as one: it happens when the engine or a
    layer's config changes while the benchmark runs (someone editing the tree). It is
    reported, and another run takes its place (at most `noop_runs` extra runs)."""
    log("timing a cold build: inv build-layers --force")
    cold, cold_code = run_inv(["--force"], log_file)
    cold_error = tail(log_file, 1) if cold_code else None
    if cold_error:
        log(f"the cold build failed (exit {cold_code}): {cold_error}")
    noops: list[float] = []
    problems = []
    for _ in range(2 * noop_runs):
        if len(noops) == noop_runs:
            break
        log("timing a no-op build: inv build-layers")
        seconds, code = run_inv([], log_file)
        rebuilt = rebuilt_layers() if code == 0 else []
        if code != 0:
            problems.append(f"exit {code} after {seconds:.1f} s: {tail(log_file, 1)}")
        elif rebuilt:
            problems.append(
                f"not a no-op ({seconds:.1f} s): rebuilt {', '.join(rebuilt)}, whose inputs changed during the run"
            )
        else:
            noops.append(seconds)
    return {
        "cold_seconds": cold,
        "cold_exit_code": cold_code,
        "cold_error": cold_error,
        "noop_seconds": noops,
        "noop_failures": problems,
    }


def with_policy(config: dict[str, Any], policy: str, is_defaults: bool) -> dict[str, Any]:
    """A copy of one parsed layers/*.toml with bytecode set to `policy` (in defaults.toml, and
    wherever a layer overrides it), docstrings kept under "source" (there is no bytecode to drop
    them from), and a layer's budget_mb at Lambda's limit."""
    changed = copy.deepcopy(config)
    build = changed.setdefault("build", {}) if is_defaults else changed.get("build", {})
    if is_defaults or "bytecode" in build:
        build["bytecode"] = policy
    if policy == "source" and build.get("docstrings") == "strip":
        build["docstrings"] = "keep"  # only bytecode can drop docstrings; source keeps them
    if not is_defaults:
        changed["budget_mb"] = LAMBDA_UNZIPPED_LIMIT // MB
    return changed


def with_prune(config: dict[str, Any], is_defaults: bool) -> dict[str, Any]:
    """A copy of one parsed layers/*.toml with its [prune] section (if any) turned on, and a layer's
    budget_mb at Lambda's limit (measured, not gated). The whole layer's [upstream_tests] selection
    goes with it: it tests areas [prune] removes, which the config refuses, and nothing here runs it."""
    changed = copy.deepcopy(config)
    if "prune" in changed:
        changed["prune"]["enabled"] = True
        changed.pop("upstream_tests", None)
    if not is_defaults:
        changed["budget_mb"] = LAMBDA_UNZIPPED_LIMIT // MB
    return changed


def scratch_root(name: str, rewrite: Callable[[dict[str, Any], bool], dict[str, Any]]) -> Path:
    """A scratch project: the same layers/ with every TOML file rewritten by `rewrite(config,
    is_defaults)`, sharing the warm pip cache. No infra/: the function gates are not measured."""
    root = TMP_DIR / f"root-{name}"
    shutil.copytree(ROOT / "layers", root / "layers")
    for toml in [root / "layers" / "defaults.toml", *sorted((root / "layers").glob("*/layer.toml"))]:
        write_toml(toml, rewrite(read_toml(toml), toml.name == "defaults.toml"))
    pip_cache = PATHS.pip_cache  # share the warm pip cache instead of downloading again
    pip_cache.mkdir(parents=True, exist_ok=True)
    BuildPaths.of(root).pip_cache.parent.mkdir(parents=True, exist_ok=True)
    BuildPaths.of(root).pip_cache.symlink_to(pip_cache, target_is_directory=True)
    return root


def policy_root(policy: str) -> Path:
    """The layers with every layer's bytecode set to `policy` and budgets at Lambda's limit (a
    larger policy must still be written, to be measured)."""
    root = scratch_root(policy, lambda config, is_defaults: with_policy(config, policy, is_defaults))
    scratch = load_project(root)  # the engine reads it back, so a rewrite that missed is caught here
    wrong = [layer.name for layer in scratch.layers if layer.bytecode != policy]
    if wrong:
        raise LayerToolError(f"could not set bytecode = {policy!r} for {', '.join(wrong)} in {root}/layers")
    return root


def pruned_root() -> Path:
    """The layers as configured, every [prune] section on: what pruning saves, side by side."""
    root = scratch_root("pruned", with_prune)
    off = [layer.name for layer in load_project(root).layers if layer.prune_option and not layer.prune]
    if off:
        raise LayerToolError(f"could not turn [prune] on for {', '.join(off)} in {root}/layers")
    return root


# ---------------------------------------------------------------------------------------
# Checks and timing


def check_variant(
    variant: Variant,
    project: ProjectConfig,
    locks: dict[str, LayerLock],
    modules: dict[str, list[str]],
    python: str,
    runtime: Runtime,
) -> None:
    """target_imports.check_layer per layer, with its base layers of the same variant under /opt."""
    for layer in build_order(project):
        bases = base_names(project, layer)
        opt = TMP_DIR / "check" / f"{variant.key}-{layer.name}" / "opt"
        link_layers([variant.layers[name] for name in [*bases, layer.name]], opt)
        versions = {
            name: package.version for source in [*bases, layer.name] for name, package in locks[source].packages.items()
        }
        outcome = check_layer(python, opt, runtime, modules[layer.name], versions)
        variant.checks[layer.name] = LayerCheck(
            modules=len(modules[layer.name]),
            dists=sorted(versions),
            import_failures=outcome.import_failures,
            missing_metadata=sorted(n for n, (_, found) in outcome.version_mismatches.items() if found is None),
            wrong_versions={n: f for n, (_, f) in outcome.version_mismatches.items() if f is not None},
        )
        remove_tree(opt.parent)  # the check may have written __pycache__ into it: never reuse it


def timed_import(python: str, opt: Path, runtime: Runtime, workdir: Path) -> tuple[float, float] | str:
    """One cold import in a fresh process: (seconds inside, process wall seconds) or the error."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), "LANG": "C.UTF-8", **AWS_ENV}
    started = time.perf_counter()
    result = subprocess.run(
        [python, "-I", "-S", "-B", "-c", TIMED_IMPORT, *lambda_sys_path(opt, runtime)],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
        timeout=300,
    )
    wall = time.perf_counter() - started
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("SECONDS ")), None)
    if result.returncode != 0 or line is None:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return lines[-1][:300] if lines else f"exit {result.returncode}"
    return float(line.split()[1]), wall


def time_imports(variants: list[Variant], python: str, runtime: Runtime, runs: int) -> None:
    """Interleave the variants run by run (A B C D A B C D ...) so machine noise hits all alike.
    One untimed run each first: it checks the statement works and warms the page cache."""
    workdir = TMP_DIR / "cwd"
    workdir.mkdir(parents=True, exist_ok=True)
    timed: list[Variant] = []
    counts: dict[str, int] = {}
    for variant in variants:
        assert variant.opt is not None
        before = sum(1 for _ in walk_files(variant.opt))
        with read_only(variant.opt):
            outcome = timed_import(python, variant.opt, runtime, workdir)
        if isinstance(outcome, str):
            variant.timed_error = outcome
            log(f"cold import does not run for {variant.title}: {outcome}")
        else:
            timed.append(variant)
        after = sum(1 for _ in walk_files(variant.opt))
        if after != before:  # the measurement would be of a tree that caches its own bytecode
            raise RuntimeError(f"{variant.opt} gained {after - before} files during an import; not read-only")
        counts[variant.key] = after
    for variant in timed:
        assert variant.opt is not None
        set_writable(variant.opt, False)
    try:
        for run in range(runs):
            log(f"cold-import round {run + 1}/{runs}")
            for variant in timed:
                assert variant.opt is not None
                outcome = timed_import(python, variant.opt, runtime, workdir)
                if isinstance(outcome, str):
                    variant.timed_error = f"run {run + 1} failed: {outcome}"
                    continue
                variant.seconds.append(outcome[0])
                variant.wall_seconds.append(outcome[1])
    finally:
        for variant in timed:
            assert variant.opt is not None
            set_writable(variant.opt, True)
    for variant in timed:
        assert variant.opt is not None
        if sum(1 for _ in walk_files(variant.opt)) != counts[variant.key]:
            raise RuntimeError(f"{variant.opt} gained files while it was timed; the runs were not read-only")


# ---------------------------------------------------------------------------------------
# Output


def md_table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right if right is not None else set(range(1, len(headers)))
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("| " + " | ".join("---:" if i in right else "---" for i in range(len(headers))) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def short_names(layer_names: list[str]) -> dict[str, str]:
    return {name: name.split("-")[0] for name in layer_names}


def check_summary(variant: Variant, short: dict[str, str]) -> tuple[str, str]:
    """(imports, metadata) cells: 'ok' or what fails, per layer."""
    if not variant.checks:
        return "not checked", "not checked"
    broken = [
        f"{short[n]}: {len(c.import_failures)}/{c.modules} modules"
        for n, c in variant.checks.items()
        if not c.imports_ok
    ]
    imports = "ok" if not broken else "FAIL (" + ", ".join(broken) + ")"
    # Base layers' packages are checked again with each layer above them: count each once.
    dists = {d for c in variant.checks.values() for d in c.dists}
    missing = {d for c in variant.checks.values() for d in c.missing_metadata}
    wrong = {d for c in variant.checks.values() for d in c.wrong_versions}
    parts = [f"{len(missing)}/{len(dists)} dists missing"] if missing else []
    parts += [f"{len(wrong)} wrong versions"] if wrong else []
    return imports, ", ".join(parts) or "ok"


def size_section(variants: list[Variant], layer_names: list[str]) -> list[str]:
    short = short_names(layer_names)
    rows = []
    for v in variants:
        if v.failed:
            rows.append([v.title, v.bytecode, *("-" for _ in layer_names), "-", "-", v.failed, "-"])
            continue
        imports, metadata = check_summary(v, short)
        under = "yes" if v.total < LAMBDA_UNZIPPED_LIMIT else "NO"
        sizes = [mb(v.sizes.get(n, 0)) for n in layer_names]
        rows.append([v.title, v.bytecode, *sizes, mb(v.total), under, imports, metadata])
    headers = ["recipe", "bytecode", *layer_names, "total", f"< {LAMBDA_UNZIPPED_LIMIT:,} B", "imports", "metadata"]
    out = ["## Unzipped size (MB = 1,000,000 bytes) and import check", ""]
    out.append(md_table(headers, rows, right=set(range(2, 3 + len(layer_names)))))
    findings = []
    for v in variants:
        for name, check in v.checks.items():
            for module, error in sorted(check.import_failures.items())[:3]:
                findings.append(f"- {v.title}, {name}: `import {module}` fails: {error[:220]}")
            if len(check.import_failures) > 3:
                findings.append(f"- {v.title}, {name}: ... and {len(check.import_failures) - 3} more modules fail")
        missing = sorted({d for c in v.checks.values() for d in c.missing_metadata})
        if missing:
            findings.append(f"- {v.title}: importlib.metadata finds no distribution for {', '.join(missing)}")
        wrong = {d: f for c in v.checks.values() for d, f in c.wrong_versions.items()}
        if wrong:
            findings.append(f"- {v.title}: metadata versions differ from the lock: {wrong}")
    if findings:
        out += ["", "Findings:", "", *findings]
    return out


def import_section(variants: list[Variant], baseline: float | None) -> list[str]:
    out = [
        "## Cold import: `import pandas, sklearn.ensemble, boto3; boto3.client('s3')`",
        "",
        "A fresh `python3.12 -I -S -B` per run, only the layers on sys.path (Lambda's order), layer "
        "folders read-only; seconds measured inside the process, from before the imports to after the client.",
        "",
    ]
    rows = []
    for v in variants:
        if not v.seconds:
            reason = v.failed or v.timed_error or "not measured"
            rows.append([v.title, v.bytecode, "-", "-", "-", "0", f"not timed: {reason[:110]}"])
            continue
        ratio = f"{median(v.seconds) / baseline:.2f}" if baseline else "n/a"
        spread = [f"{median(v.seconds):.2f}", f"{min(v.seconds):.2f}", f"{max(v.seconds):.2f}"]
        rows.append([v.title, v.bytecode, *spread, str(len(v.seconds)), ratio])
    headers = ["recipe", "bytecode", "median s", "min s", "max s", "runs", "vs plain (source only)"]
    out.append(md_table(headers, rows, right={2, 3, 4, 5, 6}))
    return out


def goal_section(
    ours: Variant | None, layers: list[LayerConfig], baseline: float | None
) -> tuple[list[str], dict[str, Any]]:
    out = ["## Goals of issue 2", ""]
    verdicts: dict[str, Any] = {}
    if ours is None or ours.failed:
        return [*out, "- ours was not measured"], verdicts
    for name, goal in GOALS_MB.items():
        size = ours.sizes.get(name)
        if size is not None:
            ok = size <= goal * MB
            out.append(f"- {name} ≤ {goal} MB: {mb(size)} MB → {'PASS' if ok else 'FAIL'}")
            verdicts[f"{name}_within_{goal}mb"] = ok
    ok = ours.total < LAMBDA_UNZIPPED_LIMIT
    out.append(
        f"- three layers < {LAMBDA_UNZIPPED_LIMIT:,} bytes: {ours.total:,} bytes "
        f"({100 * ours.total / LAMBDA_UNZIPPED_LIMIT:.0f}% of the limit) → {'PASS' if ok else 'FAIL'}"
    )
    verdicts["total_under_limit"] = ok
    for layer in layers:
        if layer.target_bytes is not None:  # a goal set below the enforced budget: report the gap
            size = ours.sizes.get(layer.name, 0)
            gap = "within it" if size <= layer.target_bytes else f"{mb(size - layer.target_bytes)} MB over"
            out.append(
                f"- {layer.name} vs the plan's {mb(layer.target_bytes)} MB: {mb(size)} MB, {gap} "
                f"(enforced budget {mb(layer.budget_bytes)} MB)"
            )
    if ours.seconds and baseline:
        ratio = median(ours.seconds) / baseline
        ok = ratio <= GOAL_IMPORT_RATIO
        out.append(
            f"- cold import ≤ 1/3 of plain source-only: {median(ours.seconds):.2f} s vs {baseline:.2f} s "
            f"= {ratio:.2f} → {'PASS' if ok else 'FAIL'}"
        )
        verdicts["import_ratio"] = ratio
        verdicts["import_ratio_ok"] = ok
    return out, verdicts


def policy_section(variants: list[Variant], current_policy: str) -> tuple[list[str], str | None]:
    """Size and cold import per bytecode policy, and the policy they argue for."""
    policies = {v.bytecode: v for v in variants if (v.key == "ours" or v.key.startswith("ours-")) and not v.failed}
    if len(policies) < 2:
        return [], None
    rows = []
    for policy in BYTECODE_POLICIES:
        if policy in policies:
            v = policies[policy]
            cold = f"{median(v.seconds):.2f}" if v.seconds else "-"
            build = f"{v.build_seconds:.0f}" if v.build_seconds is not None else "-"
            rows.append([policy, mb(v.total), cold, build])
    out = ["## Bytecode policy (same strip rules)", ""]
    out.append(md_table(["policy", "total MB", "cold import median s", "cold build s (scratch root)"], rows))
    timed = {p: v for p, v in policies.items() if v.seconds}
    if not timed:
        return out, None
    fastest = min(median(v.seconds) for v in timed.values())
    # Within 10% of the fastest counts as equally fast (run-to-run noise on this machine is of
    # that order); among those, the smallest layers win, since they leave room for code.
    near = [p for p, v in timed.items() if median(v.seconds) <= fastest * 1.10]
    best = min(near, key=lambda p: timed[p].total)
    winner = timed[best]
    others = [
        f"{policy} {(v.total - winner.total) / MB:+.1f} MB and "
        f"{median(v.seconds) / median(winner.seconds):.2f}x the time"
        for policy, v in sorted(timed.items())
        if policy != best
    ]
    agree = "the current default" if best == current_policy else f"NOT the current default ({current_policy!r})"
    out += [
        "",
        f"Verdict: bytecode = {best!r} ({mb(winner.total)} MB, {median(winner.seconds):.2f} s cold import; "
        f"{'; '.join(others)}); it is {agree} in layers/defaults.toml.",
    ]
    return out, best


def build_section(builds: dict[str, Any]) -> list[str]:
    noop = builds["noop_seconds"]
    cold = f"{builds['cold_seconds']:.1f}" if not builds["cold_exit_code"] else "FAILED"
    rows = [["cold (`--force`: no layer cache, warm pip cache)", cold, "-", "-", "1"]]
    if noop:
        spread = [f"{median(noop):.2f}", f"{min(noop):.2f}", f"{max(noop):.2f}"]
        rows.append(["no-op (right after)", *spread, str(len(noop))])
    out = ["## Build time (`inv build-layers`, all three layers, --jobs 2)", ""]
    out.append(md_table(["build", "median s", "min s", "max s", "runs"], rows))
    failures = []
    if builds["cold_error"]:
        failures.append(f"cold build: exit {builds['cold_exit_code']}: {builds['cold_error']}")
    failures += [f"no-op build: {f}" for f in builds["noop_failures"]]
    if failures:
        out += ["", "Runs not counted (full output in build/benchmarks/build.log):", ""]
        out += [f"- {f}" for f in failures]
    return out


def render(
    variants: list[Variant],
    layers: list[LayerConfig],
    builds: dict[str, Any] | None,
    runs: int,
    machine: dict[str, str],
    current_policy: str,
    elapsed: float,
) -> tuple[str, dict[str, Any]]:
    """The markdown the script prints and writes, and the JSON with every measurement."""
    by_key = {v.key: v for v in variants}
    plain = by_key.get("plain")
    baseline = median(plain.seconds) if plain and plain.seconds else None
    out = [
        "# Layer benchmark",
        "",
        f"{machine['date']} · {machine['machine']} · target {machine['target']} · "
        f"cold-import runs: {runs} (interleaved) · benchmark took {elapsed / 60:.1f} min · "
        f"load average at start {machine['load_at_start']}, at end {load_average()}",
        "",
        *size_section(variants, [layer.name for layer in layers]),
        "",
        *import_section(variants, baseline),
        "",
    ]
    goals, verdicts = goal_section(by_key.get("ours"), layers, baseline)
    out += goals
    policy_lines, best = policy_section(variants, current_policy)
    if policy_lines:
        out += ["", *policy_lines]
        verdicts["bytecode_policy"] = best
    if builds is not None:
        out += ["", *build_section(builds)]
        if builds["noop_seconds"]:
            verdicts["noop_under_1s"] = median(builds["noop_seconds"]) < 1.0
    data = {
        "schema_version": 1,
        "machine": machine,
        "runs": runs,
        "elapsed_seconds": elapsed,
        "variants": [
            {
                "key": v.key,
                "title": v.title,
                "bytecode": v.bytecode,
                "failed": v.failed,
                "unzipped_bytes": v.sizes,
                "files": v.files,
                "total_bytes": v.total,
                "checks": {n: asdict(c) for n, c in v.checks.items()},
                "cold_import_seconds": v.seconds,
                "cold_import_wall_seconds": v.wall_seconds,
                "cold_import_median": median(v.seconds) if v.seconds else None,
                "timed_error": v.timed_error,
                "build_seconds": v.build_seconds,
            }
            for v in variants
        ],
        "builds": builds,
        "verdicts": verdicts,
    }
    return "\n".join(out) + "\n", data


def load_average() -> str:
    """Other work on the machine slows every variant; the header shows how busy it was."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_facts(runtime: Runtime, arch: str, python: str, load_at_start: str) -> dict[str, str]:
    os_name = platform.system()
    release = Path("/etc/os-release")
    if release.exists():
        match = re.search(r'^PRETTY_NAME="?([^"\n]*)', release.read_text(), flags=re.M)
        os_name = match[1] if match else os_name
    command = [python, "-c", "import sys; print(sys.version.split()[0])"]
    version = subprocess.run(command, capture_output=True, text=True)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {os_name}, {platform.machine()}",
        "target": f"{runtime.name}/{arch} (interpreter {version.stdout.strip()})",
        "load_at_start": load_at_start,
    }


# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7, help="cold-import runs per variant (median; default 7)")
    parser.add_argument("--noop-runs", type=int, default=3, help="no-op builds to time (median; default 3)")
    parser.add_argument("--skip-build-timing", action="store_true", help="do not time cold and no-op builds")
    parser.add_argument("--skip-policies", action="store_true", help="do not build the other bytecode policies (e)")
    parser.add_argument("--skip-pruned", action="store_true", help="do not build the layers with [prune] on (f)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep build/benchmarks/tmp for inspection")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.noop_runs < 1:
        parser.error("--runs and --noop-runs must be at least 1")
    return args


def policy_variants(
    current_policy: str, layer_names: list[str], runtime: Runtime, arch: str, log_file: Path
) -> list[Variant]:
    """(e): our pipeline with each bytecode policy other than the project's, from scratch roots."""
    variants = []
    for policy in BYTECODE_POLICIES:
        if policy == current_policy:
            continue
        root = policy_root(policy)
        log(f"building our layers with bytecode = {policy!r} in a scratch root")
        seconds, code = run_inv(["--root", str(root)], log_file)
        variant = Variant(f"ours-{policy}", f"(e) ours, {policy}", policy, build_seconds=seconds)
        variants.append(variant)
        built = BuildPaths.of(root).output_dir(runtime.name, arch)
        zips = {name: built / f"{name}.zip" for name in layer_names}
        if code != 0 or not all(z.exists() for z in zips.values()):
            log(f"the {policy} build failed (exit {code}); see {log_file.relative_to(ROOT)}")
            variant.failed = f"build failed (exit {code}), see build/benchmarks/build.log"
            continue
        extract_zips(zips, variant)
        remove_tree(root)
    return variants


def pruned_variant(layer_names: list[str], runtime: Runtime, arch: str, log_file: Path) -> Variant:
    """(f): our pipeline with every layer's [prune] on, built in a scratch root."""
    root = pruned_root()
    log("building our layers with [prune] on in a scratch root")
    seconds, code = run_inv(["--root", str(root)], log_file)
    variant = Variant("pruned", "(f) ours, with [prune] on", "sourceless", build_seconds=seconds)
    built = BuildPaths.of(root).output_dir(runtime.name, arch)
    zips = {name: built / f"{name}.zip" for name in layer_names}
    if code != 0 or not all(z.exists() for z in zips.values()):
        log(f"the pruned build failed (exit {code}); see {log_file.relative_to(ROOT)}")
        variant.failed = f"build failed (exit {code}), see build/benchmarks/build.log"
        return variant
    extract_zips(zips, variant)
    remove_tree(root)
    return variant


def recipe_variants(
    project: ProjectConfig, locks: dict[str, LayerLock], runtime: Runtime, arch: str
) -> tuple[list[Variant], dict[str, list[str]]]:
    """(a), (b) and (c) from one plain install; and each layer's top-level modules."""
    plain = Variant("plain", "(a) plain pip --target", "source")
    modules = install_plain(project, locks, runtime, arch, plain)
    # Both recipes delete bytecode, so they ship source only, like (a).
    slim = copy_variant(plain, "slim", "(b) serverless slim", "source")
    wrangler = copy_variant(plain, "wrangler", "(c) AWS SDK for pandas", "source")
    log("applying the slim and awswrangler recipes")
    for name in plain.layers:
        apply_slim(slim.layers[name])
        apply_wrangler(wrangler.layers[name])
    for variant in (plain, slim, wrangler):
        measure_trees(variant)
    return [plain, slim, wrangler], modules


def run(args: argparse.Namespace) -> str:
    """The whole benchmark; returns the markdown it wrote."""
    load_at_start = load_average()
    project = load_project(ROOT)
    runtime, arch = resolve_target(project, None, None)
    if ARCHES[arch] != os.uname().machine:
        # Another arch would run under qemu: its cold imports would say nothing about Lambda's.
        raise LayerToolError(f"{arch} layers cannot run natively on this {os.uname().machine} machine.")
    python = find_interpreter(runtime)
    layers = build_order(project)
    layer_names = [layer.name for layer in layers]
    locks = load_locks(project, layers)
    policies = {layer.bytecode for layer in layers}
    current_policy = policies.pop() if len(policies) == 1 else "mixed"
    output_dir = PATHS.output_dir(runtime.name, arch)
    build_log = OUT_DIR / "build.log"
    build_log.write_text("")

    builds = None if args.skip_build_timing else time_builds(build_log, args.noop_runs)
    stale = report_is_stale(project, runtime.name, arch)
    if stale:
        log(f"building our layers first ({stale})")
        _, code = run_inv([], build_log)
        if code != 0 or report_is_stale(project, runtime.name, arch):
            raise LayerToolError(f"inv build-layers failed (exit {code}):\n{tail(build_log)}")
    pruned = [layer.name for layer in layers if layer.prune is not None]
    ours = Variant("ours", f"(d) ours ({', '.join(pruned)} pruned)" if pruned else "(d) ours", current_policy)
    extract_zips({name: output_dir / f"{name}.zip" for name in layer_names}, ours)
    others = [] if args.skip_policies else policy_variants(current_policy, layer_names, runtime, arch, build_log)
    if any(layer.prune_option and not layer.prune for layer in layers) and not args.skip_pruned:
        others.append(pruned_variant(layer_names, runtime, arch, build_log))
    recipes, modules = recipe_variants(project, locks, runtime, arch)

    variants = [*recipes, ours, *others]
    measured = [v for v in variants if not v.failed]
    for variant in measured:
        log(f"import check: {variant.title}")
        check_variant(variant, project, locks, modules, python, runtime)
        variant.opt = TMP_DIR / "opt" / variant.key
        link_layers([variant.layers[name] for name in layer_names], variant.opt)
    time_imports(measured, python, runtime, args.runs)

    machine = machine_facts(runtime, arch, python, load_at_start)
    elapsed = time.monotonic() - STARTED
    markdown, data = render(variants, layers, builds, args.runs, machine, current_policy, elapsed)
    (OUT_DIR / "layer_benchmark.md").write_text(markdown)
    (OUT_DIR / "layer_benchmark.json").write_text(json.dumps(data, indent=2, sort_keys=True))
    return markdown


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    remove_tree(TMP_DIR)
    TMP_DIR.mkdir(parents=True)
    try:
        markdown = run(args)
    except LayerToolError as exc:  # the engine's errors name the culprit and the fix: no traceback
        print(f"\nBenchmark stopped: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        if not args.keep_tmp:
            remove_tree(TMP_DIR)
    print(markdown)
    log(f"written: {(OUT_DIR / 'layer_benchmark.md').relative_to(ROOT)} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
