"""Cold starts from Lambda's REPORT lines: parsing, percentiles, and the benchmark to compare with.
Pure functions; the reading is in cold_starts.py."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..core.errors import ConfigError
from ..core.runtimes import ARCHES
from ..core.toolchains import UNDER_QEMU

_INIT = re.compile(r"\bInit Duration: ([0-9]+(?:\.[0-9]+)?) ms")
_STREAM_VERSION = re.compile(r"\[(\$LATEST|[0-9]+)\]")
_SINCE = re.compile(r"([0-9]+)([mhd])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
# CloudWatch Logs' longest retention (10 years); further back there is nothing to read, and a start
# before 1970 is refused by the API as if the credentials were at fault.
MAX_SINCE_DAYS = 3653


def parse_since(text: str) -> int:
    """'90m', '24h', '7d' -> seconds (CloudWatch keeps Lambda logs by the group's retention)."""
    match = _SINCE.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ConfigError(
            f"--since must be a positive number of minutes, hours or days like 90m, 24h or 7d, not {text!r}."
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_SINCE_DAYS * _UNIT_SECONDS["d"]:
        raise ConfigError(
            f"--since {text.strip()} reaches back further than CloudWatch Logs keeps anything "
            f"({MAX_SINCE_DAYS} days, its longest retention). Fix: at most {MAX_SINCE_DAYS}d, e.g. --since 30d "
            "(the functions' log groups keep 30 days)."
        )
    return seconds


def init_duration_ms(message: str) -> float | None:
    """The Init Duration of a REPORT line (None for a warm start's line or any other line)."""
    if not message.startswith("REPORT RequestId:"):
        return None
    match = _INIT.search(message)
    return float(match.group(1)) if match else None


def stream_version(log_stream: str) -> str:
    """The function version a log stream belongs to (Lambda: YYYY/MM/DD/[VERSION]id)."""
    match = _STREAM_VERSION.search(log_stream)
    return match.group(1) if match else "?"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: a value that was measured, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class InitStats:
    count: int
    p50_ms: float
    p95_ms: float
    max_ms: float

    @classmethod
    def of(cls, values: list[float]) -> InitStats:
        return cls(len(values), percentile(values, 50), percentile(values, 95), max(values))


@dataclass(frozen=True)
class BenchmarkFigures:
    """What benchmarks/cold_start.py measured for one function with the built layers."""

    function: str  # template logical id
    layer_sha256: dict[str, str]  # layer folder -> sha256 of the zip measured
    median_ms: float
    max_ms: float
    date: str
    arch: str = ""  # what the benchmark ran (natively: it refuses another arch); "" in older runs


def benchmark_figures(document: dict[str, Any]) -> dict[str, BenchmarkFigures]:
    """From build/benchmarks/cold_start.json; figures without layer hashes (older runs) are
    left out: they cannot be matched to a release."""
    shas = document.get("layer_sha256", {}).get("built", {})
    figures = {}
    for function in document.get("functions", []):
        samples = [s["init_seconds"] * 1000 for s in function.get("samples", {}).get("built", [])]
        layers = list(function.get("layers", []))
        if not samples or not shas or any(layer not in shas for layer in layers):
            continue
        figures[function["name"]] = BenchmarkFigures(
            function=function["name"],
            layer_sha256={layer: shas[layer] for layer in layers},
            median_ms=percentile(samples, 50),
            max_ms=max(samples),
            date=str(document.get("facts", {}).get("date", "")),
            arch=str(document.get("facts", {}).get("arch", "")),
        )
    return figures


def measured_under_qemu(stage_emulated: bool, function_arch: str, host_machine: str) -> bool:
    """An emulated stage runs its functions in the project's sandbox on this machine, so a function
    of another arch ran under qemu there and its init durations are not a cold start's (pure)."""
    return stage_emulated and ARCHES.get(function_arch, function_arch) != host_machine


def not_comparable(under_qemu: bool, function_arch: str, figures: BenchmarkFigures | None) -> str | None:
    """Why the benchmark's figures must not stand beside a function's init durations, or None (pure):
    a time under qemu is compared with nothing native, nor one arch's with another's."""
    if under_qemu:
        return f"not compared: init times {UNDER_QEMU}"
    if figures is not None and figures.arch and figures.arch != function_arch:
        return f"not compared: the benchmark ran {figures.arch}, the function runs {function_arch}"
    return None


def same_layers(figures: BenchmarkFigures, release_layers: dict[str, dict[str, str]]) -> bool:
    """Did the benchmark measure exactly the layer zips this release deployed?"""
    return all(release_layers.get(layer, {}).get("sha256") == sha for layer, sha in figures.layer_sha256.items())
