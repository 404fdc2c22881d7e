"""A function's init or handler failing on a module a layer's [prune] removed names the line to add."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_sandbox import layer_zip, sandbox


def test_a_pruned_module_missing_in_the_sandbox_names_the_keep_and_trace_line(tmp_path: Path) -> None:
    first = layer_zip(tmp_path, "first", {"shared.py": "WHO = 'first'\n"})
    second = layer_zip(tmp_path, "second", {"shared.py": "WHO = 'second'\n", "kit/__init__.py": ""})
    # What a build publishes beside the zip: its steps, the prune step among them.
    steps = [{"step": "strip"}, {"step": "prune", "pruned_modules": ["kit.gone"], "manifest": "trace.txt"}]
    second.with_suffix(".json").write_text(json.dumps({"name": "second", "steps": steps}))
    with sandbox(tmp_path, layers=[first, second]) as box:
        fine = box.invoke({"n": 1})
        missing = box.invoke({"import": "kit.gone.deeper"})
        other = box.invoke({"import": "not_a_layer_module"})
    assert fine.ok and fine.prune_fix is None
    assert missing.error is not None and "No module named 'kit.gone'" in missing.error["errorMessage"]
    assert missing.prune_fix is not None
    assert "kit.gone was pruned from layer second by its [prune] section" in missing.prune_fix
    assert "add 'kit.gone' to [prune] keep (layers/second/layer.toml)" in missing.prune_fix
    assert "`module kit.gone` to layers/second/trace.txt" in missing.prune_fix
    assert other.error is not None and other.prune_fix is None  # not pruned: not explained as if it were
