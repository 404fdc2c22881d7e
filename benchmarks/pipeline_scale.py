"""The pipeline at size: rows, time per stage and peak RSS against MemorySize and Timeout.

    .venv/bin/python benchmarks/pipeline_scale.py [--rows 100000 1000000 5000000 20000000]

Needs the built layers (`inv build-layers`) and python3.12. Each size is generated on the fly
(stdlib `random`, seeded; cards = rows / 40, 30 days; nothing committed), uploaded to a local
moto server as incoming/scale-<rows>.csv, and run through DataValidation -> FeatureEngineering
-> Predictions in the project's Lambda-like sandbox (lambda_ml_layers.sandbox: the template's
MemorySize is enforced on peak RSS), with the model trained by lambda_ml_layers.training and the
template's CardHistoryTable created in moto. Each stage gets a fresh container, so its peak RSS
is its own. A batch above DataValidation's MAX_BATCH_BYTES is refused with a report (shown as
"rejected"); splitting it over a fan-out is not built yet (docs/pipeline.md).

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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambda_ml_layers.interpreters import find_interpreter  # noqa: E402
from lambda_ml_layers.local_aws import MotoServer, moto_server  # noqa: E402
from lambda_ml_layers.paths import BuildPaths  # noqa: E402
from lambda_ml_layers.runtimes import RUNTIMES  # noqa: E402
from lambda_ml_layers.sam_template import FunctionSpec, function_specs  # noqa: E402
from lambda_ml_layers.sandbox import LambdaSandbox  # noqa: E402
from lambda_ml_layers.state_machine_runner.local_pipeline import (  # noqa: E402
    create_card_history_table,
    functions_environment,
    upload_trained_model,
)

TEMPLATE = ROOT / "infra" / "template.yaml"
RUNTIME = RUNTIMES["python3.12"]
LAYERS = BuildPaths.of(ROOT).output_dir("python3.12", "x86_64")
STAGES = ("DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction")
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


def run_size(rows: int, server: MotoServer, specs: dict[str, FunctionSpec], env: dict[str, str]) -> list[str]:
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
    event: Any = {"detail": {"bucket": {"name": bucket}, "object": {"key": key, "version-id": version}}}
    cells = [f"{rows:,}", f"{size_mb:.0f}"]
    python = find_interpreter(RUNTIME)
    for name in STAGES:
        spec = specs[name]
        zips = [LAYERS / f"{layer}.zip" for layer in spec.layers]
        with LambdaSandbox(spec, zips, python, RUNTIME, env) as sandbox:
            invocation = sandbox.invoke(event)
        seconds, peak = invocation.duration_seconds, invocation.max_memory_mb
        figure = f"{seconds:.1f} s of {spec.timeout_s}, {peak:.0f} of {spec.memory_mb} MB"
        result = invocation.result or {}
        if not invocation.ok or result.get("status") not in ("passed", "ok"):
            why = result.get("error", {}).get("message") or result.get("reason") or invocation.error
            cells.append(f"{result.get('status', 'crashed')}: {figure}: {str(why)[:100]}")
            break
        cells.append(figure)
        event = result
    return cells + ["-"] * (2 + len(STAGES) - len(cells))


def environment(server: MotoServer) -> dict[str, str]:
    """The functions' resources in moto: a trained model and the template's card-history table."""
    s3 = server.client("s3")
    models = f"scale-models-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=models)
    with tempfile.TemporaryDirectory() as out:
        upload_trained_model(server, ROOT, models, Path(out))
    table = create_card_history_table(server, TEMPLATE, prefix="scale")
    return functions_environment(server, models, table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000, 20_000_000])
    args = parser.parse_args()
    specs = {spec.name: spec for spec in function_specs(TEMPLATE)}
    lines = [
        "| rows | CSV MB | DataValidation | FeatureEngineering | Predictions |",
        "| ---: | ---: | --- | --- | --- |",
    ]
    print(lines[0], flush=True)
    with moto_server() as server:
        env = environment(server)
        for rows in args.rows:
            started = time.perf_counter()
            line = "| " + " | ".join(run_size(rows, server, specs, env)) + " |"
            print(f"{line}  ({time.perf_counter() - started:.0f} s in all)", flush=True)
            lines.append(line)
    target = BuildPaths.of(ROOT).benchmarks / "pipeline_scale.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()
