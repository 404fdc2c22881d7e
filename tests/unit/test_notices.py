"""Typed notices: the progress display and the report read the same events, never note text."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from lambda_ml_layers.build.report import markdown, report_data
from lambda_ml_layers.core.notices import Notice
from lambda_ml_layers.core.progress import BuildProgress

SKIPPED = Notice.warning("core", "skipped import verification: arm64 code cannot run on this x86_64 machine")


def printed(notices: list[Notice]) -> list[str]:
    out = io.StringIO()
    with BuildProgress(["core"], Console(file=out, width=200)) as progress:
        for notice in notices:
            progress.emit(notice)
    return out.getvalue().splitlines()


def test_plain_progress_prints_steps_and_warnings_as_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    lines = printed([Notice.step("core", "installing", "3 packages"), SKIPPED, Notice.notice("no template")])
    assert lines == [
        "[core] installing (3 packages)",
        f"[core] warning: {SKIPPED.message}",
        "note: no template",
    ]


def test_github_actions_gets_annotations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert printed([SKIPPED]) == [f"::warning title=core::{SKIPPED.message}"]


def test_a_notice_survives_the_manifest_and_an_unknown_kind_is_refused() -> None:
    assert Notice.from_dict(SKIPPED.to_dict()) == SKIPPED
    with pytest.raises(ValueError, match="unknown notice kind"):
        Notice.from_dict({"kind": "shout", "layer": None, "message": "x"})


def test_the_report_lists_warnings_apart_from_notes() -> None:
    data = report_data([], [], [], [SKIPPED, Notice.notice("infra/template.yaml not found")], "python3.12", "arm64")
    assert data["notices"][0] == {"kind": "warning", "layer": "core", "message": SKIPPED.message}
    assert data["notes"] == [f"core: {SKIPPED.message}", "infra/template.yaml not found"]
    text = markdown(data)
    assert f"## Warnings\n\n- core: {SKIPPED.message}\n" in text
    assert "## Notes\n\n- infra/template.yaml not found\n" in text
