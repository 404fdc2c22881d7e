"""Card history after re-uploads during a running fan-out, at size, through the template's state machine.

    .venv/bin/python benchmarks/history_reuploads.py [--rows 100000] [--correction 5000] [--later 5000]

Needs the built layers (`inv build-layers`) and python3.12. Issue 21's slow cases, each against a
clean stage (a fresh data bucket and CardHistoryTable that only ever saw the final uploads):

- corrected: a large upload (`--rows`, split into chunks) is running its Map, one sandbox per
  function so chunks go one after the other; once its first chunk has recorded its cards, a
  correction of the batch (`--correction` rows of it) is uploaded and run to the end; then the large
  run finishes (superseded), and an unrelated later batch (`--later` rows, the same cards) is run;
- rejected: the same, but the re-upload landing mid-fan-out is unreadable (rejected as a file).

For each: scores of the final uploads that differ from the clean stage's (0 expected), and whether
the batch's outputs and summary are the final upload's (or, rejected, absent). Data: the
generator of benchmarks/pipeline_scale.py (stdlib random, seeded; cards = rows / 40). A
measurement, not a test (minutes): tests/services/test_history_revisions.py runs the same cases
small on every `nox -s service_tests`. Prints a table and writes build/benchmarks/history_reuploads.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline_scale import TEMPLATE, generate  # noqa: E402

from lambda_ml_layers.local.moto_server import MotoServer  # noqa: E402
from lambda_ml_layers.local.pipeline_progress import Execution  # noqa: E402
from lambda_ml_layers.local.pipeline_stage import (  # noqa: E402
    create_card_history_table,
    s3_created_event,
    upload_trained_model,
)
from lambda_ml_layers.local.quick_pipeline import LocalPipeline, create_pipeline, pipeline_server, run_execution  # noqa: E402

BATCH = "history/large"
LATER = "history/later"
UNREADABLE = b"just,some\ntext\n"


class Stage:
    """A data bucket and a card-history table of their own, with the template's functions
    (`environment` added to theirs) and state machine pointed at them."""

    def __init__(self, server: MotoServer, models: str, environment: dict[str, str] | None = None) -> None:
        self.server = server
        self.s3 = server.client("s3")
        self.bucket = f"history-data-{uuid.uuid4().hex[:10]}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        self.table = create_card_history_table(server, TEMPLATE, prefix="history")
        variables = {"MODEL_BUCKET": models, "CARD_HISTORY_TABLE": self.table, **(environment or {})}
        self.pipeline: LocalPipeline = create_pipeline(server, ROOT, variables, prefix=f"h{uuid.uuid4().hex[:6]}")

    def upload(self, batch: str, body: bytes) -> dict[str, Any]:
        key = f"incoming/{batch}.csv"
        version = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)["VersionId"]
        return s3_created_event(self.bucket, key, version)

    def run(self, batch: str, body: bytes) -> Execution:
        return run_execution(self.server, self.pipeline, self.upload(batch, body), log=lambda line: None)

    def scores(self, batch: str) -> dict[str, str]:
        body = self.s3.get_object(Bucket=self.bucket, Key=f"predictions/{batch}/predictions.csv")["Body"].read()
        return {row["transaction_id"]: row["fraud_score"] for row in csv.DictReader(io.StringIO(body.decode()))}

    def keys(self, prefix: str) -> list[str]:
        answer = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for o in answer.get("Contents", [])]


def split(path: Path, correction: int, later: int) -> tuple[bytes, bytes, bytes]:
    """The large upload (all but the last `later` rows), its correction (its last `correction`
    rows), and the later batch (the last `later` rows): one time-ordered generated file."""
    header, *rows = path.read_text().splitlines(keepends=True)
    large, after = rows[:-later], rows[-later:]
    return tuple("".join([header, *part]).encode() for part in (large, large[-correction:], after))  # type: ignore[return-value]


def interrupted(stage: Stage, large: bytes, replacement: bytes) -> tuple[Any, Any, float]:
    """Run the large upload; once its first chunk has recorded (its features are written), upload
    `replacement` and run it to the end; then wait for the large run. Returns both results and
    the seconds the large run had been going when the replacement landed."""
    event = stage.upload(BATCH, large)
    done: dict[str, Any] = {}
    started = time.perf_counter()
    worker = threading.Thread(
        target=lambda: done.update(result=run_execution(stage.server, stage.pipeline, event, log=lambda line: None))
    )
    worker.start()
    while worker.is_alive() and not stage.keys(f"chunks/features/{BATCH}/"):
        time.sleep(0.5)
    landed = time.perf_counter() - started
    newer = stage.run(BATCH, replacement)
    worker.join()
    return done["result"], newer, landed


def differing(dirty: dict[str, str], clean: dict[str, str]) -> str:
    if dirty.keys() != clean.keys():
        return f"different rows ({len(dirty)} vs {len(clean)})"
    return f"{sum(dirty[t] != clean[t] for t in clean):,} of {len(clean):,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--correction", type=int, default=5_000)
    parser.add_argument("--later", type=int, default=5_000)
    args = parser.parse_args()
    lines = [
        "| case | large run | re-upload landed after | re-upload run | later batch scores differing | "
        "batch scores differing | batch outputs |",
        "| --- | --- | ---: | --- | --- | --- | --- |",
    ]
    with pipeline_server(1) as server, tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "generated.csv"
        generate(args.rows + args.later, path)
        large, correction, later = split(path, args.correction, args.later)
        models = f"history-models-{uuid.uuid4().hex[:10]}"
        server.client("s3").create_bucket(Bucket=models)
        upload_trained_model(server, ROOT, models, Path(scratch) / "model")
        for case, replacement in (("corrected", correction), ("rejected", UNREADABLE)):
            started = time.perf_counter()
            dirty = Stage(server, models)
            old, new, landed = interrupted(dirty, large, replacement)
            assert dirty.run(LATER, later).status == "SUCCEEDED"
            clean = Stage(server, models)
            if case == "corrected":
                assert clean.run(BATCH, correction).status == "SUCCEEDED"
                batch = differing(dirty.scores(BATCH), clean.scores(BATCH))
                summary = dirty.s3.get_object(Bucket=dirty.bucket, Key=f"predictions/{BATCH}/summary.json")
                version = dirty.s3.head_object(Bucket=dirty.bucket, Key=f"incoming/{BATCH}.csv")["VersionId"]
                outputs = "the correction's" if version.encode() in summary["Body"].read() else "NOT the correction's"
            else:
                batch = "-"
                left = [k for k in dirty.keys(f"predictions/{BATCH}/") + dirty.keys(f"features/{BATCH}/")]
                outputs = "none (withdrawn)" if not left else f"LEFT: {left}"
            assert clean.run(LATER, later).status == "SUCCEEDED"
            row = [
                case,
                f"{old.status} {old.output.get('status') if old.output else old.error}",
                f"{landed:.0f} s",
                f"{new.status} {new.output.get('status') if new.output else new.error}",
                differing(dirty.scores(LATER), clean.scores(LATER)),
                batch,
                outputs,
            ]
            lines.append("| " + " | ".join(row) + " |")
            print(lines[-1], f"({time.perf_counter() - started:.0f} s)", flush=True)
    out = ROOT / "build" / "benchmarks" / "history_reuploads.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
