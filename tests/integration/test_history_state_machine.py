"""Issue 21's three cases through the template's state machine on the local emulator: each upload
is an execution of PipelineStateMachine on moto's own Step Functions interpreter, every Lambda task
run in the project's sandbox (quick_pipeline), and the scores afterwards are compared with a clean
stage's, one that only ever saw the final uploads: 0 may differ. Small on purpose (4,000 generated
rows, 100 cards; `nox -s history`, outside CI): test_history_100k.py runs the fan-out case at 100k rows.
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
    without,
)

pytestmark = pytest.mark.emulator

ROWS, CORRECTION, LATER_ROWS = 3_000, 600, 1_000


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with pipeline_server(max_per_function=1) as running:  # one sandbox per function: chunks queue, as on 2 cores
        yield running


@pytest.fixture(scope="module")
def models(server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    return model_bucket(server, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, bytes]:
    """One time-ordered generated file: the batch (3,000 rows), its last 600 rows as a correction,
    and a later batch of the same cards (1,000 rows)."""
    return generated_uploads(ROWS, CORRECTION, LATER_ROWS, tmp_path_factory.mktemp("data"))


def test_a_corrected_reupload_that_drops_rows_scores_as_if_only_the_correction_came(
    server: MotoServer, models: str, uploads: tuple[bytes, bytes, bytes]
) -> None:
    original, _, later = uploads
    corrected = without(original, 10)
    dirty = Stage(server, models)
    for batch, body in ((BATCH, original), (BATCH, corrected), (LATER, later)):
        dirty.succeed(batch, body)
    clean = Stage(server, models)
    for batch, body in ((BATCH, corrected), (LATER, later)):
        clean.succeed(batch, body)

    assert len(dirty.scores(BATCH)) == corrected.count(b"\n") - 1 < original.count(b"\n") - 1
    assert differing_scores(dirty.scores(BATCH), clean.scores(BATCH)) == 0
    assert differing_scores(dirty.scores(LATER), clean.scores(LATER)) == 0


def test_a_large_upload_superseded_mid_fan_out_by_a_small_correction_leaves_no_trace(
    server: MotoServer, models: str, uploads: tuple[bytes, bytes, bytes]
) -> None:
    """The large upload's Map is running (its first chunk has recorded its cards) when the
    correction lands and runs to the end; the large run then ends Superseded; a later batch of the
    same cards follows."""
    large, correction, later = uploads
    # DataValidation's own knob (split.py): the large upload fans out into 4 chunks, the correction 1.
    chunked = {"CHUNK_TARGET_BYTES": str(len(large) // 4 + 1)}
    dirty = Stage(server, models, chunked)

    old, new, _ = interrupted(dirty, large, correction)
    dirty.succeed(LATER, later)
    clean = Stage(server, models, chunked)
    for batch, body in ((BATCH, correction), (LATER, later)):
        clean.succeed(batch, body)

    kinds = [e["type"] for e in old.events]
    # Mid-fan-out: the large run's Map went on after the correction had run (some of its iterations
    # ended after the correction's execution started), and the run ended in the Superseded state.
    assert kinds.count("MapIterationStarted") == 4
    assert any(e["timestamp"] > new.events[0]["timestamp"] for e in old.events if e["type"] == "MapIterationSucceeded")
    entered = [e["stateEnteredEventDetails"]["name"] for e in old.events if e["type"].endswith("StateEntered")]
    assert (old.status, new.status, entered[-1]) == ("SUCCEEDED", "SUCCEEDED", "Superseded")
    assert differing_scores(dirty.scores(BATCH), clean.scores(BATCH)) == 0
    assert differing_scores(dirty.scores(LATER), clean.scores(LATER)) == 0


def test_a_rejected_reupload_withdraws_the_batch_from_later_history(
    server: MotoServer, models: str, uploads: tuple[bytes, bytes, bytes]
) -> None:
    original, _, later = uploads
    dirty = Stage(server, models)
    dirty.succeed(BATCH, original)
    rejected = dirty.run(BATCH, UNREADABLE)
    assert (rejected.status, rejected.error) == ("FAILED", "BatchRejected")
    dirty.succeed(LATER, later)
    clean = Stage(server, models)
    clean.succeed(LATER, later)

    assert not dirty.keys(f"predictions/{BATCH}/")  # the good upload's outputs were withdrawn too
    assert differing_scores(dirty.scores(LATER), clean.scores(LATER)) == 0
