"""Each function's package links the shared helpers in (Lambda packages a CodeUri alone, and
`sam package` and the sandbox copy a link's content), so there is one source: services/shared/."""

from __future__ import annotations

from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
LINKS = [
    ("runtime.py", "data_validation"),
    ("runtime.py", "feature_engineering"),
    ("runtime.py", "predictions"),
    ("layer_modules.json", "data_validation"),
    ("layer_modules.json", "feature_engineering"),
    ("layer_modules.json", "predictions"),
    ("model_store.py", "feature_engineering"),
    ("model_store.py", "predictions"),
    ("batch_runs.py", "data_validation"),
    ("batch_runs.py", "feature_engineering"),
    ("batch_runs.py", "predictions"),
    ("runtime.py", "merge"),
    ("layer_modules.json", "merge"),
    ("batch_runs.py", "merge"),
    ("batch_history.py", "data_validation"),
    ("batch_history.py", "feature_engineering"),
    ("batch_summary.py", "predictions"),
    ("batch_summary.py", "merge"),
    *(("chunks.py", package) for package in ("data_validation", "feature_engineering", "predictions", "merge")),
    *(("pruned_modules.py", package) for package in ("data_validation", "feature_engineering", "predictions", "merge")),
]


@pytest.mark.parametrize(("name", "package"), LINKS)
def test_package_links_the_shared_module(name: str, package: str) -> None:
    link = SERVICES / package / package / name
    assert link.is_symlink(), f"{link} must be a link to services/shared/{name}, not a copy"
    assert link.resolve() == (SERVICES / "shared" / name).resolve()
