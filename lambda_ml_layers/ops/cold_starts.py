"""`inv cold-starts`: init duration per function from its log group's REPORT lines, next to the
layer versions and release each function version came from, and the benchmark's figures for them.

The REPORT lines are Lambda's own (or, on the local stage, the ones the smoke run's sandbox writes
the same way: deploy/sandbox_logs.py). The benchmark's figures are build/benchmarks/cold_start.json
(benchmarks/cold_start.py), matched to a release by the sha256 of the layer zips both used.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from ..config.template import FUNCTION_TYPES, TEMPLATE, load_template
from ..core.toolchains import UNDER_QEMU
from ..deploy.deploy_template import resolve_sub, template_parameters
from ..deploy.release_history import Release
from .cold_start_rules import (
    BenchmarkFigures,
    InitStats,
    benchmark_figures,
    init_duration_ms,
    measured_under_qemu,
    not_comparable,
    same_layers,
    stream_version,
)
from .stage_inventory import aws_failure, open_stage, warn


@dataclass(frozen=True)
class VersionColdStarts:
    function: str  # template logical id
    name: str  # the function's name in the stage
    version: str
    stats: InitStats
    layers: tuple[str, ...]
    releases: tuple[int, ...]
    benchmark: BenchmarkFigures | None
    benchmark_same_layers: bool
    arch: str = "x86_64"  # the function version's Architectures
    under_qemu: bool = False  # run by the local stage's sandbox under qemu (measured_under_qemu)


def stage_functions(root: Path, parameters: dict[str, str]) -> dict[str, str]:
    """Template logical id -> the function's name in the stage."""
    template = load_template(root / TEMPLATE)
    values = template_parameters(template, parameters)
    return {
        logical: resolve_sub(resource["Properties"].get("FunctionName", logical), values, f"{logical} FunctionName")
        for logical, resource in template["Resources"].items()
        if resource.get("Type") in FUNCTION_TYPES
    }


def init_durations(logs_client: Any, function_name: str, since_ms: int) -> dict[str, list[float]]:
    """Function version -> the Init Durations (ms) of its REPORT lines since `since_ms`."""
    found: dict[str, list[float]] = defaultdict(list)
    pages = logs_client.get_paginator("filter_log_events").paginate(
        logGroupName=f"/aws/lambda/{function_name}", startTime=since_ms, filterPattern='"Init Duration"'
    )
    try:
        for page in pages:
            for event in page.get("events", []):
                value = init_duration_ms(str(event.get("message", "")))
                if value is not None:
                    found[stream_version(str(event.get("logStreamName", "")))].append(value)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return {}  # no log group: the function never ran
        raise
    return dict(found)


def read_benchmark(path: Path) -> dict[str, BenchmarkFigures]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError:
        return {}  # a broken file counts as none: the column then says to run the benchmark again
    return benchmark_figures(document) if isinstance(document, dict) else {}


def _releases_of(history: list[Release], logical: str, name: str, version: str) -> list[Release]:
    return [
        r
        for r in history
        if r.functions.get(logical, {}).get("name") == name and str(r.functions[logical].get("version")) == version
    ]


def cold_starts(
    root: Path, stage_name: str, since_seconds: int, warn: Callable[[str], None] = warn
) -> list[VersionColdStarts]:
    """Init durations per function version; a bad release record is named (its versions show no release)."""
    opened = open_stage(root, stage_name, "inv cold-starts")
    figures = read_benchmark(opened.paths.cold_start_figures)
    since_ms = int((time.time() - since_seconds) * 1000)
    host = os.uname().machine
    rows = []
    try:
        read = opened.store.history()
        for problem in read.problems():
            warn(problem)
        history = list(read.releases)
        logs = opened.session.client("logs")
        lambda_client = opened.session.client("lambda")
        for logical, name in sorted(stage_functions(root, opened.stage.parameters).items()):
            for version, values in sorted(init_durations(logs, name, since_ms).items()):
                recorded = _releases_of(history, logical, name, version)
                layers = tuple(recorded[-1].functions[logical]["layers"]) if recorded else ()
                qualifier = {"Qualifier": version} if version != "?" else {}
                config = lambda_client.get_function_configuration(FunctionName=name, **qualifier)
                if not recorded and version != "?":
                    layers = tuple(layer["Arn"] for layer in config.get("Layers", []))
                arch = str((config.get("Architectures") or ["x86_64"])[0])
                bench = figures.get(logical)
                rows.append(
                    VersionColdStarts(
                        function=logical,
                        name=name,
                        version=version,
                        stats=InitStats.of(values),
                        layers=layers,
                        releases=tuple(r.number for r in recorded),
                        benchmark=bench,
                        benchmark_same_layers=bool(bench and recorded and same_layers(bench, recorded[-1].layers)),
                        arch=arch,
                        under_qemu=measured_under_qemu(opened.stage.emulated, arch, host),
                    )
                )
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(opened, "inv cold-starts", "reading the functions' REPORT lines", exc) from None
    return rows


def _benchmark_cell(row: VersionColdStarts) -> str:
    refused = not_comparable(row.under_qemu, row.arch, row.benchmark)
    if refused:
        return refused
    if row.benchmark is None:
        return "no figures (run benchmarks/cold_start.py)"
    b = row.benchmark
    which = "same layers" if row.benchmark_same_layers else "OTHER layers"
    return f"p50 {b.median_ms:.0f}, max {b.max_ms:.0f} ({which}, {b.date[:10]})"


def cold_start_lines(rows: list[VersionColdStarts], since: str) -> list[str]:
    if not rows:
        return [f"No cold start (REPORT line with an Init Duration) in the functions' log groups in the last {since}."]
    columns = ("version", "release", "count", "p50 ms", "p95 ms", "max ms")
    header = f"{'function':<28} " + " ".join(f"{c:>8}" for c in columns) + "  benchmark ms"
    lines = [f"Cold starts in the last {since} (Init Duration of REPORT lines):", header]
    for row in rows:
        s = row.stats
        release = ",".join(str(n) for n in row.releases) or "-"
        lines.append(
            f"{row.function:<28} {row.version:>8} {release:>8} {s.count:>8} {s.p50_ms:>8.0f} {s.p95_ms:>8.0f} "
            f"{s.max_ms:>8.0f}  {_benchmark_cell(row)}"
        )
        if row.under_qemu:
            lines.append(f"{'':<30}{row.arch}, run by the local stage's sandbox {UNDER_QEMU}")
        lines.extend(f"{'':<30}layer {arn.rsplit(':layer:', 1)[-1]}" for arn in row.layers)
    return lines
