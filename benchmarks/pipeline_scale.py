"""The pipeline at size: rows, time per stage and peak RSS against MemorySize and Timeout.

    .venv/bin/python benchmarks/pipeline_scale.py [--rows 100000 1000000 5000000 20000000]

Needs the built layers (`inv build-layers`) and python3.12. Each size is generated on the fly
(stdlib `random`, seeded; cards = rows / 40, 30 days; nothing committed), uploaded to a local
moto server as incoming/scale-<rows>.csv, and run through the template's state machine by
moto's own interpreter in the patched local AWS (lambda_ml_layers.local.quick_pipeline): Validate
(which splits it by card into chunks) -> the Map (FeatureEngineering -> Predictions per chunk,
`--sandboxes` at once) -> Merge, each function in the project's Lambda-like sandbox inside the
server (lambda_ml_layers.local.sandbox: the template's
MemorySize and Timeout are enforced), with the model trained by lambda_ml_layers.training and the
template's CardHistoryTable created in moto. Per function: its slowest invocation against its
Timeout, its peak RSS against its MemorySize (a sandbox serves several chunks, warm, as Lambda
would), and for the chunked stages how many and their time in all.

A measurement, not a test: it prints a table and writes build/benchmarks/pipeline_scale.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambda_ml_layers.config.template import FunctionSpec, function_specs  # noqa: E402
from lambda_ml_layers.core.paths import BuildPaths  # noqa: E402
from lambda_ml_layers.local.moto_server import MotoServer  # noqa: E402
from lambda_ml_layers.local.pipeline_progress import report_figures  # noqa: E402
from lambda_ml_layers.local.pipeline_stage import (  # noqa: E402
    create_card_history_table,
    s3_created_event,
    upload_trained_model,
)
from lambda_ml_layers.local.quick_pipeline import (  # noqa: E402
    LocalPipeline,
    create_pipeline,
    pipeline_server,
    run_execution,
)

TEMPLATE = ROOT / "infra" / "template.yaml"
STAGES = ("DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction", "MergeFunction")
HEADER = ["transaction_id", "card_id", "timestamp", "amount", "merchant_category", "channel", "distance_from_home_km"]
CATEGORIES = ["grocery", "restaurant", "fuel", "online_retail", "pharmacy", "electronics", "travel"]
CHANNELS = ["in_store", "online", "atm"]


def generate(rows: int, path: Path, seed: int = 10) -> None:
    """A scoring batch of `rows` transactions in time order (written streaming: any size)."""
    rng = random.Random(seed)
    start = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    step = 30 * 86400 / rows
    cards = max(1, rows // 40)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for n in range(rows):
            when = start + dt.timedelta(seconds=int(n * step))
            writer.writerow(
                [
                    f"tx_{n:09d}",
                    f"card_{rng.randrange(cards):07d}",
                    when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    f"{rng.lognormvariate(3.3, 1.0):.2f}",
                    rng.choice(CATEGORIES),
                    rng.choice(CHANNELS),
                    f"{rng.expovariate(1 / 12):.1f}",
                ]
            )


def run_size(rows: int, server: MotoServer, specs: dict[str, FunctionSpec], pipeline: LocalPipeline) -> list[str]:
    s3 = server.client("s3")
    bucket = f"scale-data-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key = f"incoming/scale-{rows}.csv"
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "batch.csv"
        generate(rows, path)
        size_mb = path.stat().st_size / 1e6
        s3.upload_file(str(path), bucket, key)
    version = s3.head_object(Bucket=bucket, Key=key)["VersionId"]
    since = int(time.time() * 1000)
    result = run_execution(server, pipeline, s3_created_event(bucket, key, version), log=lambda line: None)
    chunks = sum(1 for e in result.events if e["type"] == "MapIterationStarted")
    cells = [f"{rows:,}", f"{size_mb:.0f}", str(chunks)]
    logs = server.client("logs")
    for name in STAGES:
        spec = specs[name]
        group = f"/aws/lambda/{pipeline.functions[name]}"
        try:
            found = logs.filter_log_events(logGroupName=group, startTime=since, filterPattern="REPORT")["events"]
        except logs.exceptions.ResourceNotFoundException:
            found = []
        calls, longest_ms, total_ms, peak = report_figures([e["message"] for e in found])
        if not calls:
            cells.append("-")
            continue
        slowest = longest_ms / 1000
        each = f"{slowest:.1f} s of {spec.timeout_s}" if calls == 1 else f"up to {slowest:.1f} s of {spec.timeout_s}"
        total = "" if calls == 1 else f" ({calls} chunks, {total_ms / 1000:.0f} s in all)"
        cells.append(f"{each}, {peak:.0f} of {spec.memory_mb} MB{total}")
    if result.status == "SUCCEEDED":
        outcome = f"{result.output.get('status')} in {result.duration_s:.0f} s"
    else:
        outcome = f"FAILED in {result.duration_s:.0f} s: {result.error}: {str(result.cause)[:100]}"
    return [*cells, outcome]


def environment(server: MotoServer) -> dict[str, str]:
    """The functions' resources in moto: a trained model and the template's card-history table."""
    s3 = server.client("s3")
    models = f"scale-models-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=models)
    with tempfile.TemporaryDirectory() as out:
        upload_trained_model(server, ROOT, models, Path(out))
    table = create_card_history_table(server, TEMPLATE, prefix="scale")
    return {"MODEL_BUCKET": models, "CARD_HISTORY_TABLE": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000, 20_000_000])
    parser.add_argument(
        "--sandboxes", type=int, default=2, help="sandboxes per function at once (the Map's concurrency here)"
    )
    args = parser.parse_args()
    specs = {spec.name: spec for spec in function_specs(TEMPLATE)}
    lines = [
        "| rows | CSV MB | chunks | DataValidation | FeatureEngineering | Predictions | Merge | execution |",
        "| ---: | ---: | ---: | --- | --- | --- | --- | --- |",
    ]
    print(lines[0], flush=True)
    with pipeline_server(args.sandboxes) as server:
        pipeline = create_pipeline(server, ROOT, environment(server), prefix="scale")
        for rows in args.rows:
            started = time.perf_counter()
            line = "| " + " | ".join(run_size(rows, server, specs, pipeline)) + " |"
            print(f"{line}  ({time.perf_counter() - started:.0f} s in all)", flush=True)
            lines.append(line)
    target = BuildPaths.of(ROOT).benchmarks / "pipeline_scale.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()
