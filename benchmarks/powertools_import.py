"""Cold import of each handler module with the hand-written runtime vs with Powertools, side by side.

    .venv/bin/python benchmarks/powertools_import.py [--runs 15] [--baseline REV] [--function NAME ...]

services/shared/runtime.py logs and writes metrics with aws-lambda-powertools (Logger, Metrics);
until it did, it had its own logger and EMF writer. Both are measured in one run on the same
built layers (`inv build-layers`; Powertools is in aws-utilities, the baseline does not import it):

  (a) hand-written  the function package with runtime.py as it was at REV (--baseline)
  (b) powertools    the function package as it is in the working tree

Each sample is a fresh Lambda-like sandbox (lambda_ml_layers.local.sandbox: task/ and opt/
read-only, so the package compiles from source and the layers' bytecode is used as on Lambda)
with one invocation of an event every handler refuses at once (cold_start.py's wrong-shape
event: one ERROR line and the FailedBatches metric, nothing else touched). The figure is the
sandbox's import time of the handler module (`import_seconds`; init also counts the interpreter
start). Runs are interleaved A/B, B/A, ... so both share the machine's noise.

The handler's import is mostly pandas and boto3, and on a loaded machine its spread hides a
difference of tens of milliseconds; so a second table times runtime.py alone the same way
(`import <package>.runtime`, hand-written vs Powertools, interleaved, --runtime-runs each), in
a fresh `python3.12 -I -S -B` with the same extracted layers on sys.path, as CPU time
(time.process_time), which other processes on the machine do not inflate.

Prints the tables and writes them to build/benchmarks/powertools_import.md and .json. A
measurement, not a test. The baseline runtime must still offer what today's handlers import
from it; a name it lacks fails the run with the sandbox's init error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the engine package is not installed in .venv

from cold_start import (  # noqa: E402  (benchmarks/ is this script's own folder, first on sys.path)
    OUT_DIR,
    TEMPLATE,
    WRONG_SHAPE_EVENT,
    built_zips,
    interpreter_version,
    load_average,
    outcome_of,
)

from lambda_ml_layers.build.build_layers import resolve_target  # noqa: E402
from lambda_ml_layers.build.target_imports import lambda_sys_path  # noqa: E402
from lambda_ml_layers.checks.layer_checks import extract_built  # noqa: E402
from lambda_ml_layers.config.project import build_order, load_project  # noqa: E402
from lambda_ml_layers.config.template import FunctionSpec, function_specs  # noqa: E402
from lambda_ml_layers.core.errors import LayerToolError  # noqa: E402
from lambda_ml_layers.core.interpreters import find_interpreter  # noqa: E402
from lambda_ml_layers.core.paths import BuildPaths  # noqa: E402
from lambda_ml_layers.core.runtimes import ARCHES, Runtime  # noqa: E402
from lambda_ml_layers.local.moto_server import DUMMY_CREDENTIALS  # noqa: E402
from lambda_ml_layers.local.sandbox import LambdaSandbox  # noqa: E402

RUNTIME = "services/shared/runtime.py"
# The last commit whose runtime.py had its own logger and EMF writer.
DEFAULT_BASELINE = "5915539"
VARIANTS = ("hand-written", "powertools")
Sample = tuple[float, float, str]  # handler import s, init s, outcome


def log(message: str) -> None:
    print(f"[powertools_import] {message}", file=sys.stderr, flush=True)


def baseline_runtime(revision: str) -> str:
    result = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:{RUNTIME}"], capture_output=True, text=True)
    if result.returncode != 0:
        raise LayerToolError(f"cannot read {RUNTIME} at {revision!r}: {result.stderr.strip()}")
    if "aws_lambda_powertools" in result.stdout:
        raise LayerToolError(f"{RUNTIME} at {revision} already uses Powertools: pass an earlier --baseline")
    return result.stdout


def with_runtime(spec: FunctionSpec, runtime_source: str, into: Path) -> FunctionSpec:
    """A copy of the function's package (links resolved, as `sam package` stores them) with
    runtime.py replaced."""
    code = into / spec.name
    shutil.copytree(spec.code_dir, code, symlinks=False)
    (link,) = code.glob("*/runtime.py")
    link.write_text(runtime_source)
    return replace(spec, code_dir=code)


def import_seconds(spec: FunctionSpec, zips: list[Path], python: str, runtime: Runtime) -> Sample:
    """One cold invocation in a fresh sandbox."""
    with LambdaSandbox(spec, zips, python, runtime, dict(DUMMY_CREDENTIALS)) as sandbox:
        invocation = sandbox.invoke(WRONG_SHAPE_EVENT)
    if invocation.error is not None or invocation.import_seconds is None or invocation.init_seconds is None:
        raise LayerToolError(f"{spec.name} failed at init: {invocation.error}\n{invocation.logs[-2000:]}")
    return invocation.import_seconds, invocation.init_seconds, outcome_of(invocation)


def runtime_cpu_seconds(spec: FunctionSpec, opt: Path, python: str, runtime: Runtime) -> float:
    """CPU seconds to import the package's runtime.py in a fresh interpreter, layers on sys.path."""
    (package,) = {path.parent.name for path in spec.code_dir.glob("*/runtime.py")}
    paths = [str(spec.code_dir), *lambda_sys_path(opt, runtime)]
    code = (
        f"import sys, time; sys.path[:0] = {paths!r}; started = time.process_time(); "
        f"import {package}.runtime; print(time.process_time() - started)"
    )
    result = subprocess.run([python, "-I", "-S", "-B", "-c", code], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise LayerToolError(f"importing {package}.runtime failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def cell(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ({min(values) * 1000:.0f}–{max(values) * 1000:.0f})"


def render_runtime_only(cpu: dict[str, list[float]], facts: dict[str, object]) -> list[str]:
    old, new = (statistics.median(cpu[v]) for v in VARIANTS)
    return [
        "",
        "## runtime.py alone, CPU time",
        "",
        f"Median over {facts['runtime_runs']} fresh `python -I -S -B` per variant (interleaved), "
        f"`import {facts['runtime_package']}.runtime` with the built layers on sys.path, time.process_time().",
        "",
        "| import of runtime.py | CPU ms (min–max) |",
        "|---|---:|",
        f"| hand-written | {cell(cpu['hand-written'])} |",
        f"| Powertools (Logger, Metrics) | {cell(cpu['powertools'])} |",
        f"| difference | {(new - old) * 1000:+.0f} |",
        f"| ratio | {new / old:.1f} |",
    ]


def render(samples: dict[str, dict[str, list[Sample]]], facts: dict[str, object]) -> str:
    headers = [
        "function",
        "import ms hand-written (min–max)",
        "import ms Powertools (min–max)",
        "Powertools − hand-written ms",
        "ratio",
        "init ms (hand-written / Powertools)",
        "outcome",
    ]
    rows = []
    for name, by_variant in samples.items():
        imports = {v: [s[0] for s in by_variant[v]] for v in VARIANTS}
        inits = {v: statistics.median(s[1] for s in by_variant[v]) * 1000 for v in VARIANTS}
        old, new = (statistics.median(imports[v]) for v in VARIANTS)
        rows.append(
            [
                name,
                cell(imports["hand-written"]),
                cell(imports["powertools"]),
                f"{(new - old) * 1000:+.0f}",
                f"{new / old:.2f}",
                f"{inits['hand-written']:.0f} / {inits['powertools']:.0f}",
                ", ".join(sorted({s[2] for v in VARIANTS for s in by_variant[v]})),
            ]
        )
    return "\n".join(
        [
            "# Cold import of the handler module: hand-written runtime vs Powertools",
            "",
            f"Median over {facts['runs']} fresh sandboxes per variant (interleaved A/B, B/A), {facts['runtime']} "
            f"({facts['python']}), the built layers, one wrong-shape event each. Import = the handler module's "
            f"import (Powertools is imported there, by runtime.py); init adds the interpreter start. Baseline: "
            f"{RUNTIME} at {facts['baseline']}.",
            "",
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---" if i in (0, len(headers) - 1) else "---:" for i in range(len(headers))) + "|",
            *("| " + " | ".join(row) + " |" for row in rows),
            "",
            f"{facts['cpus']} CPUs; load average at start {facts['load_at_start']}, at end {facts['load_at_end']}; "
            f"{facts['date']}.",
            *render_runtime_only(facts["runtime_cpu_seconds"], facts),  # type: ignore[arg-type]
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh sandboxes per function and variant (default 15)")
    parser.add_argument(
        "--runtime-runs", type=int, default=31, help="fresh interpreters per variant for runtime.py alone (default 31)"
    )
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help=f"git revision of the hand-written {RUNTIME}")
    parser.add_argument("--function", action="append", help="a template function (default: all); repeatable")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.runtime_runs < 1:
        parser.error("--runs and --runtime-runs must be at least 1")
    load_at_start = load_average()
    try:
        project = load_project(ROOT)
        runtime, arch = resolve_target(project, None, None)
        if ARCHES[arch] != os.uname().machine:
            raise LayerToolError(f"{arch} layers cannot run on this {os.uname().machine} machine.")
        python = find_interpreter(runtime)
        specs = {spec.name: spec for spec in function_specs(TEMPLATE) if spec.runtime == runtime.name}
        unknown = sorted(set(args.function or ()) - set(specs))
        if unknown:
            raise LayerToolError(f"no function {', '.join(unknown)} in {TEMPLATE.name}; there are {', '.join(specs)}")
        chosen = [specs[name] for name in args.function or specs]
        used = {layer for spec in chosen for layer in spec.layers}
        zips = built_zips([layer for layer in build_order(project) if layer.name in used], runtime, arch)
        old_runtime = baseline_runtime(args.baseline)
        today = (ROOT / RUNTIME).read_text()
        samples: dict[str, dict[str, list[Sample]]] = {s.name: {v: [] for v in VARIANTS} for s in chosen}
        with tempfile.TemporaryDirectory(prefix="powertools-import-") as temp:
            variants = {
                variant: [with_runtime(spec, source, Path(temp) / variant) for spec in chosen]
                for variant, source in zip(VARIANTS, (old_runtime, today), strict=True)
            }
            opt = Path(temp) / "opt"
            for layer in chosen[0].layers:
                extract_built(BuildPaths.of(ROOT).output_dir(runtime.name, arch), layer, runtime, arch, opt)
            cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for run in range(args.runtime_runs):
                for variant in VARIANTS if run % 2 == 0 else VARIANTS[::-1]:
                    cpu[variant].append(runtime_cpu_seconds(variants[variant][0], opt, python, runtime))
            log(f"runtime.py alone: {', '.join(f'{v} {statistics.median(cpu[v]) * 1000:.0f} ms' for v in VARIANTS)}")
            for run in range(args.runs):
                order = VARIANTS if run % 2 == 0 else VARIANTS[::-1]
                for index, spec in enumerate(chosen):
                    for variant in order:
                        sample = import_seconds(
                            variants[variant][index], [zips[layer] for layer in spec.layers], python, runtime
                        )
                        samples[spec.name][variant].append(sample)
                        log(f"run {run + 1}/{args.runs} {spec.name} {variant}: import {sample[0] * 1000:.0f} ms")
    except LayerToolError as exc:
        print(f"powertools_import: {exc}", file=sys.stderr)
        return exc.exit_code
    facts: dict[str, object] = {
        "runs": args.runs,
        "runtime": runtime.name,
        "python": interpreter_version(python),
        "baseline": args.baseline,
        "runtime_runs": args.runtime_runs,
        "runtime_package": next(chosen[0].code_dir.glob("*/runtime.py")).parent.name,
        "runtime_cpu_seconds": cpu,
        "cpus": os.cpu_count(),
        "load_at_start": load_at_start,
        "load_at_end": load_average(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    table = render(samples, facts)
    print(table)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "powertools_import.md").write_text(table + "\n")
    (OUT_DIR / "powertools_import.json").write_text(json.dumps({"facts": facts, "samples": samples}, indent=2) + "\n")
    log(f"wrote {(OUT_DIR / 'powertools_import.md').relative_to(ROOT)} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
