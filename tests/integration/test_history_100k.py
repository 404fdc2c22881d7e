"""Issue 21 at size, through the template's state machine on moto's own interpreter: a correction
and a rejection, each landing while a 100k-row upload's Map is running (its first chunk has
recorded its cards), leave the card history, the batch's outputs and its summary consistent with
a clean stage that only ever saw the final uploads. Minutes: not in `nox -t ci`; run it with
`nox -s history` (with test_history_state_machine.py, the same cases small).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lambda_ml_layers.local.moto_server import MotoServer
from lambda_ml_layers.local.quick_pipeline import pipeline_server
from tests.integration.history_stages import (
    BATCH,
    LATER,
    UNREADABLE,
    Stage,
    differing_scores,
    generated_uploads,
    interrupted,
    model_bucket,
)

pytestmark = pytest.mark.emulator

ROWS, CORRECTION, LATER_ROWS = 100_000, 5_000, 5_000


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with pipeline_server(max_per_function=1) as running:  # chunks one after the other: a long fan-out
        yield running


@pytest.fixture(scope="module")
def models(server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    return model_bucket(server, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, bytes]:
    return generated_uploads(ROWS, CORRECTION, LATER_ROWS, tmp_path_factory.mktemp("data"))


def registered(stage: Stage) -> str:
    """The revision the batch registry (services/shared/batch_history.py) counts."""
    key = {"card_id": {"S": f"#batch#{BATCH}"}, "batch_part": {"S": "current"}}
    item = stage.server.client("dynamodb").get_item(TableName=stage.table, Key=key, ConsistentRead=True)
    return str(item["Item"]["revision"]["S"])


def latest(stage: Stage) -> str:
    return str(stage.s3.head_object(Bucket=stage.bucket, Key=f"incoming/{BATCH}.csv")["VersionId"])


def test_a_correction_during_a_100k_fan_out_leaves_history_outputs_and_summary_consistent(
    server: MotoServer, models: str, uploads: tuple[bytes, bytes, bytes]
) -> None:
    large, correction, later = uploads
    dirty = Stage(server, models)
    old, new, _ = interrupted(dirty, large, correction)
    dirty.succeed(LATER, later)
    clean = Stage(server, models)
    clean.succeed(BATCH, correction)
    clean.succeed(LATER, later)

    assert [e["type"] for e in old.events].count("MapIterationStarted") > 1  # it had fanned out
    assert (old.status, old.output["status"], new.status) == ("SUCCEEDED", "superseded", "SUCCEEDED")
    assert registered(dirty) == latest(dirty)  # history: the correction's revision counts
    summary = dirty.read_json(f"predictions/{BATCH}/summary.json")
    assert (summary["uploaded_rows"], summary["scored_rows"]) == (CORRECTION, CORRECTION)
    assert latest(dirty) in str(summary)  # the summary is the correction's
    assert differing_scores(dirty.scores(BATCH), clean.scores(BATCH)) == 0
    assert differing_scores(dirty.scores(LATER), clean.scores(LATER)) == 0


def test_a_rejection_during_a_100k_fan_out_withdraws_the_batch_from_history_and_outputs(
    server: MotoServer, models: str, uploads: tuple[bytes, bytes, bytes]
) -> None:
    large, _, later = uploads
    dirty = Stage(server, models)
    old, rejected, _ = interrupted(dirty, large, UNREADABLE)
    dirty.succeed(LATER, later)
    clean = Stage(server, models)
    clean.succeed(LATER, later)

    assert [e["type"] for e in old.events].count("MapIterationStarted") > 1
    assert (old.status, old.output["status"]) == ("SUCCEEDED", "superseded")
    assert (rejected.status, rejected.error) == ("FAILED", "BatchRejected")
    assert registered(dirty) == latest(dirty)  # the rejected upload's revision: nothing it stored counts
    assert not dirty.keys(f"predictions/{BATCH}/") and not dirty.keys(f"features/{BATCH}/")
    assert differing_scores(dirty.scores(LATER), clean.scores(LATER)) == 0
