"""`inv layer-usage`, `inv prune-layers`, `inv cold-starts` and where alarms go, on the local stage.

One stage for the whole module (two real deploys, as test_deploy_local does them: a copy of the
checkout, a patched moto server over HTTP, the real `sam deploy`):

  deploy 1   alarms go nowhere (no alarms_to); the smoke run writes each function's REPORT line
  then       two more versions of core-data-science published by hand (unused, newer)
  deploy 2   aws-utilities changed (one new version, one new version of each function),
             alarms to an e-mail address
  then       function versions 1 deleted by hand: aws-utilities version 1 is then referenced
             by release 1's record only
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.local.moto_server import MotoServer, moto_server
from tests.integration.test_deploy_local import PREFIX, copy_checkout, inv, ok

pytestmark = pytest.mark.emulator

STAGE = "local"
FUNCTIONS = ("data-validation", "feature-engineering", "predictions", "merge")
CORE = f"{PREFIX}-core-data-science"
AWS_UTILS = f"{PREFIX}-aws-utilities"


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with moto_server() as running:
        yield running


def set_alarms_to(root: Path, value: str) -> None:
    stages = root / "infra" / "stages.toml"
    text = stages.read_text().replace("[local]\n", f'[local]\nalarms_to = "{value}"\n', 1)
    stages.write_text(text)


def subscribers(server: MotoServer) -> list[tuple[str, str]]:
    sns = server.client("sns")
    topic = f"arn:aws:sns:us-east-1:123456789012:{PREFIX}-alarms"
    return [(s["Protocol"], s["Endpoint"]) for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]]


def publish_unused_version(server: MotoServer, layer: str) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("python/unused_marker.py", "# published by hand, used by nothing\n")
    published = server.client("lambda").publish_layer_version(LayerName=layer, Content={"ZipFile": buffer.getvalue()})
    return int(published["Version"])


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory, server: MotoServer) -> dict[str, Any]:
    root = copy_checkout(tmp_path_factory.mktemp("ops-checkout"))
    first = ok(inv(root, server, "deploy", "--stage", STAGE))
    first_subscribers = subscribers(server)
    extra = [publish_unused_version(server, CORE), publish_unused_version(server, CORE)]
    config = root / "layers" / "aws-utilities" / "layer.toml"
    config.write_text(config.read_text().replace('"events",', '"events", "kms",'))
    set_alarms_to(root, "ops@example.com")
    second = ok(inv(root, server, "deploy", "--stage", STAGE))
    assert "Stage 'local' is on release 2 (verified)." in second
    return {"root": root, "first": first, "second": second, "first_subscribers": first_subscribers, "extra": extra}


def test_deploy_says_where_alarms_go_and_subscribes_it(stage: dict[str, Any], server: MotoServer) -> None:
    assert f"Alarms go nowhere: SNS topic {PREFIX}-alarms has no subscriber" in stage["first"]
    assert stage["first_subscribers"] == []
    assert f"Alarms go to: e-mail to ops@example.com (subscribed to SNS topic {PREFIX}-alarms)." in stage["second"]
    assert subscribers(server) == [("email", "ops@example.com")]
    alarms = server.client("cloudwatch").describe_alarms()["MetricAlarms"]
    init_alarms = {a["MetricName"]: a for a in alarms if a["Namespace"] == "LambdaMLLayers/InitDuration"}
    assert set(init_alarms) == {f"{PREFIX}-{f}" for f in FUNCTIONS}
    assert all(a["Threshold"] == 4000 and a["ExtendedStatistic"] == "p95" for a in init_alarms.values())
    # The flag-rate band deployed from the template's parameter defaults (half and twice ~4%).
    flag_rate = {a["Statistic"]: a for a in alarms if a["MetricName"] == "FlagRate"}
    assert {s: (a["Threshold"], a["ComparisonOperator"]) for s, a in flag_rate.items()} == {
        "Maximum": (8, "GreaterThanThreshold"),
        "Minimum": (2, "LessThanThreshold"),
    }
    logs = server.client("logs")
    for function in FUNCTIONS:
        (metric_filter,) = logs.describe_metric_filters(logGroupName=f"/aws/lambda/{PREFIX}-{function}")[
            "metricFilters"
        ]
        assert metric_filter["metricTransformations"][0]["metricName"] == f"{PREFIX}-{function}"


def test_cold_starts_reads_the_report_lines_the_smoke_runs_wrote(stage: dict[str, Any], server: MotoServer) -> None:
    root: Path = stage["root"]
    # What benchmarks/cold_start.py writes, for exactly the layer zips release 2 deployed.
    release_2 = json.loads((BuildPaths.of(root).releases(STAGE) / "0002.json").read_text())
    figures = {
        "facts": {"date": "2026-11-27T12:00:00+00:00"},
        "layer_sha256": {"built": {layer: info["sha256"] for layer, info in release_2["layers"].items()}},
        "functions": [
            {"name": logical, "layers": layers, "samples": {"built": [{"init_seconds": s} for s in (1.5, 1.6, 1.7)]}}
            for logical, layers in (
                ("DataValidationFunction", ["core-data-science", "aws-utilities"]),
                ("PredictionsFunction", ["core-data-science", "ml-libraries", "aws-utilities"]),
            )
        ],
    }
    BuildPaths.of(root).cold_start_figures.parent.mkdir(parents=True, exist_ok=True)
    BuildPaths.of(root).cold_start_figures.write_text(json.dumps(figures))
    output = ok(inv(root, server, "cold-starts", "--stage", STAGE, "--since", "2h"))
    rows = [line.split() for line in output.splitlines() if line.endswith("Function") or "Function " in line]
    by_key = {(row[0], row[1]): row for row in rows}
    for logical in ("DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction"):
        for version, release in (("1", "1"), ("2", "2")):
            row = by_key[(logical, version)]
            assert row[2] == release and row[3] == "1", row  # one cold start each: that deploy's smoke run
            p50, p95, maximum = (float(v) for v in row[4:7])
            assert 0 < p50 == p95 == maximum, row
    assert "p50 1600, max 1700 (same layers, 2026-11-27)" in next(
        line for line in output.splitlines() if line.startswith("DataValidationFunction") and " 2 " in line
    )
    assert "OTHER layers" in next(
        line for line in output.splitlines() if line.startswith("DataValidationFunction") and " 1 " in line
    )
    assert "no figures" in next(line for line in output.splitlines() if line.startswith("FeatureEngineering"))
    assert f"layer {AWS_UTILS}:2" in output and f"layer {AWS_UTILS}:1" in output


def test_layer_usage_and_prune(stage: dict[str, Any], server: MotoServer) -> None:
    root: Path = stage["root"]
    client = server.client("lambda")
    for function in FUNCTIONS:  # an operator removed the first function versions
        client.delete_function(FunctionName=f"{PREFIX}-{function}", Qualifier="1")
    usage = ok(inv(root, server, "layer-usage", "--stage", STAGE))
    core = usage.split(CORE)[1].split(f"\n{PREFIX}")[0]
    assert "version    3  latest, unused" in core and "version    2  behind (latest 3), unused" in core
    assert "version    1  behind (latest 3)\n" in core
    assert f"alias {PREFIX}-predictions:live -> 2" in core and "release 1" in core and "release 2" in core
    aws_utils = usage.split(AWS_UTILS)[1]
    assert "version    1  behind (latest 2)\n        release 1\n" in aws_utils  # only the record holds it

    dry = ok(inv(root, server, "prune-layers", "--stage", STAGE, "--keep", "1", "--dry-run"))
    assert f"would delete {CORE}:2" in dry and "Dry run: nothing was deleted." in dry
    assert len(client.list_layer_versions(LayerName=CORE)["LayerVersions"]) == 3

    pruned = ok(inv(root, server, "prune-layers", "--stage", STAGE, "--keep", "1"))
    assert f"deleted      {CORE}:2  (unused, older than the newest 1)" in pruned
    assert f"kept         {CORE}:3  (one of the newest 1)" in pruned
    assert f"kept         {AWS_UTILS}:1  (recorded in release 1)" in pruned
    assert f"kept         {CORE}:1  (used by function version" in pruned
    assert sorted(v["Version"] for v in client.list_layer_versions(LayerName=CORE)["LayerVersions"]) == [1, 3]
    assert sorted(v["Version"] for v in client.list_layer_versions(LayerName=AWS_UTILS)["LayerVersions"]) == [1, 2]
    # Nothing left to prune: a second run deletes nothing.
    assert "Deleted 0 layer version(s)" in ok(inv(root, server, "prune-layers", "--stage", STAGE, "--keep", "1"))


def test_bad_arguments_are_clean_errors(stage: dict[str, Any], server: MotoServer) -> None:
    root: Path = stage["root"]
    keep = inv(root, server, "prune-layers", "--stage", STAGE, "--keep", "0")
    assert keep.returncode == 2 and "--keep must be at least 1" in keep.stderr and "Traceback" not in keep.stderr
    since = inv(root, server, "cold-starts", "--stage", STAGE, "--since", "yesterday")
    assert since.returncode == 2 and "--since must be" in since.stderr and "Traceback" not in since.stderr
