"""Integration tests run on two workers (`pytest -n 2`, see noxfile.py), scheduled by module:
a module's tests stay on one worker, in order, since they share a stage or a build; the modules
that build or train in the checkout itself (its build/ folder, its training venv) share one
worker, so they never race for its build lock. Without xdist this file changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lambda_ml_layers.local.moto_server import MotoServer, start_moto_server

IN_THE_CHECKOUT = {
    "test_real_layers.py",
    "test_pipeline_sandbox.py",
    "test_train_model_cli.py",
    "test_layer_trace.py",
    "test_state_machine_runner.py",
    "test_pruned_contract.py",
    "test_model_flag_rate.py",
}


def scope_of(nodeid: str) -> str:
    """The unit xdist hands to one worker: the test's module, or one scope for the checkout's."""
    module = nodeid.split("::", 1)[0]
    return "the-checkout" if module.rsplit("/", 1)[-1] in IN_THE_CHECKOUT else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    # xdist's own --dist loadgroup marks are ignored under pytest 9 (tests of one group were
    # seen split across workers), so the grouping is this scheduler's.
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return ModuleScheduling(config, log)


@pytest.fixture(scope="module")
def patched_server() -> Iterator[MotoServer]:
    """The project's local AWS: moto 5.2.5 with local_aws_fixes applied, as every command uses it."""
    server = start_moto_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stock_server() -> Iterator[MotoServer]:
    """Unpatched moto 5.2.5, for the strict-xfail tests that show each gap local_aws_fixes closes."""
    server = start_moto_server(stock=True)
    try:
        yield server
    finally:
        server.stop()
