"""Publishing is all or nothing: staged beside the destinations, renamed in one pass."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from lambda_ml_layers.build import artifacts
from lambda_ml_layers.build.artifacts import publishing


def test_a_failure_while_staging_leaves_every_destination_as_it_was(tmp_path: Path) -> None:
    kept = tmp_path / "out" / "a.json"
    kept.parent.mkdir()
    kept.write_text("old")
    with pytest.raises(RuntimeError), publishing() as publication:
        publication.text("new", kept)
        publication.text("new", tmp_path / "out" / "b.json")
        raise RuntimeError("a gate failed")
    assert kept.read_text() == "old"
    assert sorted(p.name for p in kept.parent.iterdir()) == ["a.json"]  # no staged .part left behind


def test_unchanged_files_are_not_rewritten(tmp_path: Path) -> None:
    same = tmp_path / "same.json"
    same.write_text("x")
    before = same.stat().st_mtime_ns
    with publishing() as publication:
        publication.text("x", same)
        assert publication.staged == []
    assert same.stat().st_mtime_ns == before


def test_ctrl_c_during_the_renames_cannot_leave_half_a_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    destinations = [tmp_path / f"{name}.zip" for name in "abc"]
    real_replace = os.replace
    calls = []

    def replace_then_ctrl_c(source: Path, destination: Path) -> None:
        real_replace(source, destination)
        calls.append(destination)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C, between two renames

    monkeypatch.setattr(artifacts.os, "replace", replace_then_ctrl_c)
    with publishing() as publication:
        for destination in destinations:
            publication.text("new", destination)
    assert [d.read_text() for d in destinations] == ["new"] * 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
