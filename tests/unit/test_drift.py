"""Drift: a stage that does not run what its latest good record says is named, function by function."""

from __future__ import annotations

from lambda_ml_layers.deploy.deployed_state import FunctionState, StackState
from lambda_ml_layers.deploy.drift import drift, drift_message
from lambda_ml_layers.deploy.release_history import History, Release
from tests.unit.test_release_history import body, history_of, record

LAYER = "arn:aws:lambda:us-east-1:123456789012:layer:core:3"


def running(version: str = "2", layers: tuple[str, ...] = (), code: str = "c") -> StackState:
    function = FunctionState("F", "f", version, f"arn:f:{version}", layers, {"CodeSha256": code})
    return StackState("UPDATE_COMPLETE", {"F": ("AWS::Lambda::Function", "f")}, {"F": function}, {})


def release_2() -> Release:
    history = history_of({1: body(record(1)), 2: body(record(2))})
    assert history.current is not None
    return history.current


def test_a_stage_running_its_latest_record_has_no_drift() -> None:
    assert drift(running(), release_2()) == []
    assert drift_message("local", running(), history_of({1: body(record(1)), 2: body(record(2))})) is None


def test_another_version_is_drift_though_code_and_layers_match() -> None:
    # A configuration change (memory, environment) publishes a new version with the same code and layers.
    [line] = drift(running(version="5"), release_2())
    assert line == (
        "F: the stage runs version 5, code c..., layers []; its history says version 2, code c..., layers []"
    )


def test_other_layers_or_code_are_drift() -> None:
    assert drift(running(layers=(LAYER,)), release_2()) == [
        "F: the stage runs version 2, code c..., layers ['core:3']; its history says version 2, code c..., layers []"
    ]
    assert len(drift(running(code="other"), release_2())) == 1


def test_the_message_names_the_stage_the_release_and_the_fix() -> None:
    history = history_of({1: body(record(1)), 2: body(record(2))})
    message = drift_message("local", running(version="5"), history)
    assert message is not None
    assert "stage 'local' does not run its latest recorded release 2 (deploy, 2026-12-06T12:00:00Z)" in message
    assert "`inv rollback --stage local --to 2`" in message and "`inv deploy --stage local`" in message


def test_a_function_gone_from_the_stack_is_drift() -> None:
    empty = StackState("DOES_NOT_EXIST", {}, {}, {})
    [line] = drift(empty, release_2())
    assert line.startswith("F: the stage runs nothing (not in the stack); its history says version 2")


def test_a_stack_without_any_record_is_named() -> None:
    message = drift_message("local", running(), History(()))
    assert message is not None and "its history has no release" in message
    assert drift_message("local", StackState("DOES_NOT_EXIST", {}, {}, {}), History(())) is None


def test_with_a_missing_latest_record_the_last_good_one_is_compared() -> None:
    # Release 3's record was deleted: the history names it; drift compares with release 2, the last good one.
    history = history_of({1: body(record(1)), 2: body(record(2)), 3: None})
    assert history.problems()
    message = drift_message("local", running(version="3"), history)
    assert message is not None and "latest recorded release 2" in message
