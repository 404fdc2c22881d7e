"""Stages for issue 21's card-history tests through the template's state machine on moto's own
interpreter (quick_pipeline): each stage is a data bucket, a CardHistoryTable and the template's
functions pointed at them, so a "clean stage" that only ever saw the final uploads can be run
beside the one that saw everything. The re-upload choreography (`interrupted`, `split`) is the
benchmark's (benchmarks/history_reuploads.py), so the test and the measurement run the same cases.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from benchmarks import history_reuploads
from benchmarks.history_reuploads import BATCH, LATER, UNREADABLE, interrupted, split
from lambda_ml_layers.local.moto_server import MotoServer
from lambda_ml_layers.local.pipeline_progress import Execution
from lambda_ml_layers.local.pipeline_stage import upload_trained_model
from tests.integration.test_pipeline_sandbox import build_layers
from tests.project_factory import REPO

__all__ = [
    "BATCH",
    "LATER",
    "UNREADABLE",
    "Stage",
    "differing_scores",
    "generated_uploads",
    "interrupted",
    "model_bucket",
    "without",
]


class Stage(history_reuploads.Stage):
    """The benchmark's stage, with the checks the tests make of it."""

    def succeed(self, batch: str, body: bytes) -> Execution:
        result = self.run(batch, body)
        assert result.status == "SUCCEEDED", f"{batch}: {result.status} {result.error}: {result.cause}"
        return result

    def read_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())


def differing_scores(dirty: dict[str, str], clean: dict[str, str]) -> int:
    """Scores that differ from the clean stage's; the same transactions are required, and the
    scores must vary, or equality would prove nothing."""
    assert dirty.keys() == clean.keys(), f"different rows: {len(dirty)} vs {len(clean)}"
    assert len(clean) > 100 and len(set(clean.values())) > 10
    return sum(dirty[t] != clean[t] for t in clean)


def without(body: bytes, every: int) -> bytes:
    """The upload with every `every`-th row dropped and one card's rows gone altogether."""
    header, *rows = body.decode().splitlines(keepends=True)
    gone = rows[0].split(",")[1]
    kept = [r for n, r in enumerate(rows) if n % every and r.split(",")[1] != gone]
    return "".join([header, *kept]).encode()


def model_bucket(server: MotoServer, out_dir: Path) -> str:
    """The layers built and the shipped model trained, uploaded to a new bucket of `server`."""
    build_layers()
    bucket = f"it-history-models-{uuid.uuid4().hex[:10]}"
    server.client("s3").create_bucket(Bucket=bucket)
    upload_trained_model(server, REPO, bucket, out_dir)
    return bucket


def generated_uploads(rows: int, correction: int, later_rows: int, folder: Path) -> tuple[bytes, bytes, bytes]:
    """One time-ordered generated file cut into the batch (`rows`), its last `correction` rows as a
    correction, and a later batch of the same cards (`later_rows`)."""
    from benchmarks.pipeline_scale import generate

    path = folder / "generated.csv"
    generate(rows + later_rows, path)
    return split(path, correction, later_rows)
