"""The ops rules: which layer versions are referenced and may be pruned; REPORT lines and percentiles."""

from __future__ import annotations

import pytest

from lambda_ml_layers.core.errors import ConfigError
from lambda_ml_layers.deploy.sandbox_logs import log_stream_name
from lambda_ml_layers.local.sandbox import Invocation, log_lines, report_line
from lambda_ml_layers.ops.cold_start_rules import (
    BenchmarkFigures,
    InitStats,
    benchmark_figures,
    init_duration_ms,
    measured_under_qemu,
    not_comparable,
    parse_since,
    percentile,
    same_layers,
    stream_version,
)
from lambda_ml_layers.ops.cold_starts import VersionColdStarts, cold_start_lines
from lambda_ml_layers.ops.layer_usage_rules import (
    Alias,
    FunctionVersion,
    LayerVersion,
    RecordedRelease,
    prune_decisions,
    usages,
)

PREFIX = "arn:aws:lambda:us-east-1:123456789012:layer:"


def version(name: str, number: int) -> LayerVersion:
    return LayerVersion(name, number, f"{PREFIX}{name}:{number}")


def arn(name: str, number: int) -> str:
    return f"{PREFIX}{name}:{number}"


VERSIONS = [version("core", n) for n in range(1, 7)] + [version("aws", 1), version("aws", 2)]
FUNCTIONS = [
    FunctionVersion("validate", "$LATEST", (arn("core", 6), arn("aws", 2))),
    FunctionVersion("validate", "3", (arn("core", 6), arn("aws", 2))),
    FunctionVersion("validate", "2", (arn("core", 4), arn("aws", 1))),
    FunctionVersion("other-stack-fn", "$LATEST", (arn("core", 1),)),
]
ALIASES = [Alias("validate", "live", ("3", "2"))]  # 2 still gets a routing weight
RELEASES = [RecordedRelease(1, frozenset({arn("core", 2)})), RecordedRelease(2, frozenset({arn("core", 6)}))]


def decisions(keep: int) -> dict[str, tuple[bool, str]]:
    found = usages(VERSIONS, FUNCTIONS, ALIASES, RELEASES)
    return {
        f"{d.usage.version.layer_name}:{d.usage.version.version}": (d.delete, d.reason)
        for d in prune_decisions(found, keep)
    }


def test_usage_names_function_versions_aliases_and_releases() -> None:
    found = {f"{u.version.layer_name}:{u.version.version}": u for u in usages(VERSIONS, FUNCTIONS, ALIASES, RELEASES)}
    core6 = found["core:6"]
    assert core6.function_versions == ("validate:$LATEST", "validate:3")
    assert core6.aliases == ("validate:live -> 3",)
    assert core6.releases == (2,)
    assert core6.status == "latest"
    assert found["core:4"].aliases == ("validate:live -> 2",)
    assert found["core:4"].status == "behind (latest 6)"
    assert found["core:5"].status == "behind (latest 6), unused"
    assert found["aws:2"].status == "latest"


def test_prune_deletes_only_unreferenced_versions_older_than_the_newest_n() -> None:
    result = decisions(keep=1)
    deleted = sorted(name for name, (delete, _) in result.items() if delete)
    assert deleted == ["core:3", "core:5"]
    assert result["core:6"] == (False, "one of the newest 1")
    assert "used by function version other-stack-fn:$LATEST" in result["core:1"][1]
    assert "recorded in release 1" in result["core:2"][1]
    assert "behind alias validate:live -> 2" in result["core:4"][1]
    assert result["aws:1"][0] is False


def test_prune_keeps_the_newest_n_even_when_unused() -> None:
    result = decisions(keep=3)
    assert result["core:5"] == (False, "one of the newest 3")
    assert [name for name, (delete, _) in result.items() if delete] == ["core:3"]


def test_a_layer_version_referenced_by_nothing_at_all_goes() -> None:
    found = usages([version("x", 1), version("x", 2)], [], [], [])
    assert [(d.usage.version.version, d.delete) for d in prune_decisions(found, 1)] == [(2, False), (1, True)]


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), ("24h", 86400), ("7d", 604800)])
def test_since(text: str, seconds: int) -> None:
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "24", "0h", "1w", "-3h", "h"])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ConfigError, match="--since"):
        parse_since(text)


@pytest.mark.parametrize("text", ["99999999d", "3654d", "87697h", "9999999999m"])
def test_since_refuses_further_back_than_cloudwatch_keeps_logs(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--since .* further than CloudWatch Logs keeps anything .* at most 3653d"):
        parse_since(text)
    assert parse_since("3653d") == 3653 * 86400


def invocation(
    cold: bool, init: float | None = 1.23456, logs: str = "hello\n", request_id: str = "r", memory: int = 128
) -> Invocation:
    return Invocation(
        {"status": "smoke"}, None, logs, cold, init, 1.0, 0.0421, 123.4, request_id=request_id, memory_size_mb=memory
    )


def test_report_line_is_lambdas_and_reads_back() -> None:
    line = report_line(invocation(cold=True, request_id="req-1", memory=1769))
    assert line == (
        "REPORT RequestId: req-1\tDuration: 42.10 ms\tBilled Duration: 43 ms\tMemory Size: 1769 MB\t"
        "Max Memory Used: 123 MB\tInit Duration: 1234.56 ms\t"
    )
    assert init_duration_ms(line) == 1234.56
    warm = report_line(invocation(cold=False, init=None, request_id="req-2", memory=1769))
    assert "Init Duration" not in warm and init_duration_ms(warm) is None
    assert init_duration_ms("hello Init Duration: 5 ms") is None  # only REPORT lines count


def test_invocation_lines_and_stream_name() -> None:
    lines = log_lines(invocation(cold=True), "7")
    assert lines[0] == "START RequestId: r Version: 7" and lines[1] == "hello" and lines[2] == "END RequestId: r"
    stream = log_stream_name("7", 0.0, "abc")
    assert stream == "1970/01/01/[7]abc"
    assert stream_version(stream) == "7" and stream_version("2026/01/01/[$LATEST]x") == "$LATEST"


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 50) == 10 and percentile(values, 95) == 19 and percentile([7.0], 95) == 7
    assert InitStats.of([3.0, 1.0, 2.0]) == InitStats(3, 2.0, 3.0, 3.0)


def test_benchmark_figures_match_a_release_by_layer_hashes() -> None:
    document = {
        "facts": {"date": "2026-11-27T10:00:00+00:00"},
        "layer_sha256": {"built": {"core": "aa", "aws": "bb"}},
        "functions": [
            {
                "name": "F",
                "layers": ["core", "aws"],
                "samples": {"built": [{"init_seconds": s} for s in (1.0, 2.0, 3.0)]},
            },
            {"name": "Old", "layers": ["gone"], "samples": {"built": [{"init_seconds": 1.0}]}},
        ],
    }
    figures = benchmark_figures(document)
    assert list(figures) == ["F"]
    assert (figures["F"].median_ms, figures["F"].max_ms) == (2000.0, 3000.0)
    assert same_layers(figures["F"], {"core": {"sha256": "aa"}, "aws": {"sha256": "bb"}})
    assert not same_layers(figures["F"], {"core": {"sha256": "aa"}, "aws": {"sha256": "cc"}})
    assert benchmark_figures({"functions": document["functions"]}) == {}  # an older run without hashes


def test_init_times_under_qemu_are_labelled_and_never_compared() -> None:
    """The local stage's sandbox runs an arm64 function under qemu on this x86_64 machine: its init
    durations say so, and the native benchmark's figures are not put beside them."""
    assert measured_under_qemu(True, "arm64", "x86_64") and not measured_under_qemu(True, "x86_64", "x86_64")
    assert not measured_under_qemu(False, "arm64", "x86_64")  # a real stage's arm64 runs on Graviton
    bench = BenchmarkFigures("F", {"core": "aa"}, 900.0, 1200.0, "2026-11-27", "x86_64")
    assert not_comparable(False, "x86_64", bench) is None
    assert not_comparable(False, "arm64", bench) == "not compared: the benchmark ran x86_64, the function runs arm64"
    row = VersionColdStarts("F", "f", "3", InitStats.of([7000.0]), (), (1,), bench, True, "arm64", under_qemu=True)
    [_, _, line, label] = cold_start_lines([row], "2h")
    assert "not compared: init times under qemu: not comparable to native" in line and "p50 900" not in line
    assert label.strip() == "arm64, run by the local stage's sandbox under qemu: not comparable to native"
    native = cold_start_lines([VersionColdStarts("F", "f", "3", InitStats.of([950.0]), (), (1,), bench, True)], "2h")
    assert "p50 900, max 1200 (same layers" in native[2] and len(native) == 3
