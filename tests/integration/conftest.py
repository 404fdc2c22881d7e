"""Integration tests run on two workers (`pytest -n 2 --dist loadgroup`, see noxfile.py): one
module stays on one worker, in order, since its tests share a stage or a build; the modules that
build or train in the checkout itself (its build/ folder, its training venv) share one worker,
so they never wait on each other's build lock. Without xdist the markers change nothing."""

from __future__ import annotations

import pytest

IN_THE_CHECKOUT = {"test_real_layers.py", "test_pipeline_sandbox.py", "test_train_model_cli.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.name
        group = "the-checkout" if module in IN_THE_CHECKOUT else module
        item.add_marker(pytest.mark.xdist_group(group))
