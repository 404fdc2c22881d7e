"""Each function ships its own copy of the shared helpers (Lambda packages a CodeUri alone);
the copies must stay identical to services/shared/."""

from __future__ import annotations

from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
COPIES = [
    ("runtime.py", "data_validation"),
    ("runtime.py", "feature_engineering"),
    ("runtime.py", "predictions"),
    ("model_store.py", "feature_engineering"),
    ("model_store.py", "predictions"),
]


@pytest.mark.parametrize(("name", "package"), COPIES)
def test_copy_matches_canonical(name: str, package: str) -> None:
    canonical = (SERVICES / "shared" / name).read_text()
    copy = SERVICES / package / package / name
    assert copy.read_text() == canonical, (
        f"{copy} differs from services/shared/{name}: edit the shared file and copy it: "
        f"cp services/shared/{name} {copy.relative_to(SERVICES.parent)}"
    )
