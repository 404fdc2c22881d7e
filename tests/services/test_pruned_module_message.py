"""A layer that is attached but lacks a submodule (its [prune] removed it) is not reported as a
missing layer: the init fails naming the module and the keep/trace line to add."""

from __future__ import annotations

import json

from tests.services.test_layer_imports import LAYER_OF_MODULE, import_handler


def test_a_pruned_submodule_names_the_module_and_the_prune_fix_not_a_missing_layer() -> None:
    # feature_engineering imports sklearn.compose (features.py); block only it, as a pruned zip would.
    result = import_handler("feature_engineering", "sklearn.compose")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    layer = LAYER_OF_MODULE["sklearn"]
    assert last == (
        f"feature_engineering.runtime.LayerMissingError: FeatureEngineering imports 'sklearn.compose', which "
        f"layer {layer} does not have: the layer's build pruned it ([prune] in its layer.toml). Add "
        f"'sklearn.compose' to that [prune] keep (or a `module sklearn.compose` line to the layer's trace.txt) "
        f"and rebuild; see docs/layer-contract.md."
    )
    assert "add !Ref" not in result.stderr
    (log,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (log["error_type"], log["layer"], log["module"]) == ("ModulePruned", layer, "sklearn.compose")
