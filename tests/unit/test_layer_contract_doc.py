"""docs/layer-contract.md's Contract table is ml-libraries' [prune] keep list (off by default), no more, no less."""

from __future__ import annotations

import re

from lambda_ml_layers.config.project import load_project
from tests.project_factory import REPO


def documented_areas() -> set[str]:
    text = (REPO / "docs" / "layer-contract.md").read_text()
    section = text.split("\n## Contract\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([\w.]+)`", row.split(" | ")[0])}


def test_the_contract_table_lists_exactly_the_keep_list() -> None:
    prune = load_project(REPO).layer("ml-libraries").prune_option
    assert prune is not None
    assert documented_areas() == set(prune.keep)
